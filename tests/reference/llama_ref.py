"""A numpy forward of a Llama-architecture GGUF model, written for Encore's tests from the
architecture's definition (RMSNorm, rotary embeddings on adjacent pairs as llama.cpp's "normal"
mode, grouped-query attention, SwiGLU, tied output): weights through llama.cpp's gguf-py.

    python llama_ref.py MODEL.gguf TOKENS_JSON N_GREEDY OUT_JSON

Writes {"logits": next-token logits after the prompt, "greedy": N_GREEDY greedy token ids}.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field(reader, key):
    f = reader.fields[key]
    return f.parts[f.data[0]][0]


def main():
    path, tokens_json, n_greedy, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    r = GGUFReader(path)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    n_layers = int(field(r, f"{arch}.block_count"))
    n_heads = int(field(r, f"{arch}.attention.head_count"))
    n_kv = int(field(r, f"{arch}.attention.head_count_kv"))
    eps = float(field(r, f"{arch}.attention.layer_norm_rms_epsilon"))
    theta = float(field(r, f"{arch}.rope.freq_base"))
    w = {}
    for t in r.tensors:
        w[t.name] = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(
            [int(x) for x in reversed(t.shape)] if len(t.shape) > 1 else [int(t.shape[0])])
    emb = w["token_embd.weight"]
    d = emb.shape[1]
    hd = d // n_heads
    out_w = w.get("output.weight", emb)

    def rmsnorm(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    def rope(x, pos):  # x [heads, hd], adjacent pairs
        i = np.arange(hd // 2, dtype=np.float64)
        ang = pos * theta ** (-2.0 * i / hd)
        c, s = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        x0, x1 = x[:, 0::2], x[:, 1::2]
        y = np.empty_like(x)
        y[:, 0::2] = x0 * c - x1 * s
        y[:, 1::2] = x0 * s + x1 * c
        return y

    cache_k = [[] for _ in range(n_layers)]
    cache_v = [[] for _ in range(n_layers)]

    def step(token, pos):
        x = emb[token].copy()
        for l in range(n_layers):
            p = f"blk.{l}"
            h = rmsnorm(x, w[f"{p}.attn_norm.weight"])
            q = (w[f"{p}.attn_q.weight"] @ h).reshape(n_heads, hd)
            k = (w[f"{p}.attn_k.weight"] @ h).reshape(n_kv, hd)
            v = (w[f"{p}.attn_v.weight"] @ h).reshape(n_kv, hd)
            q, k = rope(q, pos), rope(k, pos)
            cache_k[l].append(k)
            cache_v[l].append(v)
            K = np.stack(cache_k[l], axis=1)  # [kv, t, hd]
            V = np.stack(cache_v[l], axis=1)
            rep = n_heads // n_kv
            att = np.empty((n_heads, hd), dtype=np.float32)
            for head in range(n_heads):
                kh = K[head // rep]
                sc = kh @ q[head] / np.sqrt(hd)
                sc = np.exp(sc - sc.max())
                sc /= sc.sum()
                att[head] = sc @ V[head // rep]
            x = x + w[f"{p}.attn_output.weight"] @ att.reshape(-1)
            h = rmsnorm(x, w[f"{p}.ffn_norm.weight"])
            g = w[f"{p}.ffn_gate.weight"] @ h
            u = w[f"{p}.ffn_up.weight"] @ h
            x = x + w[f"{p}.ffn_down.weight"] @ (g / (1.0 + np.exp(-g)) * u)
        return out_w @ rmsnorm(x, w["output_norm.weight"])

    tokens = json.loads(tokens_json)
    for pos, t in enumerate(tokens):
        logits = step(t, pos)
    first = logits.copy()
    greedy = []
    pos = len(tokens)
    for _ in range(n_greedy):
        t = int(np.argmax(logits))
        greedy.append(t)
        logits = step(t, pos)
        pos += 1
    with open(out, "w") as f:
        json.dump({"logits": first.tolist(), "greedy": greedy}, f)


if __name__ == "__main__":
    main()
