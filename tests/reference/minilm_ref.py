"""An independent numpy implementation of a sentence-transformers BERT (all-MiniLM-L6-v2) for
Encore's reference checks: embeddings, 6 post-norm layers, mean pooling, L2 normalisation.

Written from the Hugging Face BERT definition, not from Encore's Rust code. Reads config.json and
model.safetensors from the model folder and a JSON list of token-id lists; writes a JSON list of
embeddings.

    python3 minilm_ref.py MODEL_DIR IDS.json OUT.json
"""
import json
import math
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name.removeprefix("bert.")] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def embed(ids, w, cfg):
    eps, h, heads = cfg["layer_norm_eps"], cfg["hidden_size"], cfg["num_attention_heads"]
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    d = h // heads
    lin = lambda x, p: x @ w[p + ".weight"].T + w[p + ".bias"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q, k, v = (lin(x, f"{p}.attention.self.{m}").reshape(n, heads, d).transpose(1, 0, 2) for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v
        ctx = attn.transpose(1, 0, 2).reshape(n, h)
        x = layer_norm(x + lin(ctx, f"{p}.attention.output.dense"), w[f"{p}.attention.output.LayerNorm.weight"], w[f"{p}.attention.output.LayerNorm.bias"], eps)
        ff = lin(gelu(lin(x, f"{p}.intermediate.dense")), f"{p}.output.dense")
        x = layer_norm(x + ff, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps)
    m = x.mean(0)
    return m / max(np.linalg.norm(m), 1e-12)


def main():
    model, ids_path, out = sys.argv[1:4]
    cfg = json.load(open(f"{model}/config.json"))
    w = read_safetensors(f"{model}/model.safetensors")
    all_ids = json.load(open(ids_path))
    json.dump([embed(ids, w, cfg).tolist() for ids in all_ids], open(out, "w"))


if __name__ == "__main__":
    main()
