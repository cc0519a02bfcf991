"""Encore's SASRec (id-only, optionally with completion buckets) as an ONNX graph, for the
onnxruntime-web comparison in scripts/bench/onnx-latency.mjs.

The graph is written op by op from the bundle's configuration and the float32 weights that
`encore export RUN --tensors FILE` writes (safetensors named by burn module path), following
burn 0.22's modules: embeddings + right-aligned positions -> LayerNorm (eps 1e-12) -> post-norm
Transformer layers (multi-head attention whose padded and future keys get -1e4, residual,
LayerNorm; GELU (erf) feed-forward, residual, LayerNorm) -> the last position's state scored
against every track (tied output) -> the top k.

Inputs (one listener, the full window, as the app sends it): `items` int64 [1, max_len], model
item + 1 with 0 for padding on the left; `completion` int64 [1, max_len], completion bucket
(0: unknown or padding). Outputs: `scores` [1, n_items], `top_scores` and `top_items` [1, k].

Checks itself against a numpy forward of the same weights (and onnxruntime when installed).
  python onnx_sasrec.py BUNDLE_DIR TENSORS.safetensors OUT.onnx [--k 20]
"""

import argparse
import json
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {meta['dtype']}, expected F32")
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype="<f4").reshape(meta["shape"])
    return out


def build(cfg, w, k):
    m = cfg["model"]
    if m["name"] != "sasrec" or m.get("fusion"):
        sys.exit(f"only id-only SASRec is exported (this bundle: {m['name']}, fusion {m.get('fusion')})")
    p = "SasRec."
    d, heads, layers, max_len, n = m["d_model"], m["n_heads"], m["n_layers"], m["max_len"], m["n_items"]
    dk = d // heads
    comp = m.get("completion")
    if comp and comp["kind"] != "buckets":
        sys.exit("only the bucketed completion input is exported")
    nodes, inits = [], []
    count = [0]

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(kind, inputs, **attrs):
        count[0] += 1
        out = f"{kind.lower()}_{count[0]}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(x, prefix):
        return op("Add", [op("MatMul", [x, const(prefix + ".weight", w[prefix + ".weight"])]),
                          const(prefix + ".bias", w[prefix + ".bias"])])

    def norm(x, prefix):
        return op("LayerNormalization", [x, const(prefix + ".gamma", w[prefix + ".gamma"]),
                                         const(prefix + ".beta", w[prefix + ".beta"])],
                  axis=-1, epsilon=1e-12)

    items = "items"
    x = op("Gather", [const("item_emb", w[p + "item_emb.weight"]), items], axis=0)
    if comp:
        x = op("Add", [x, op("Gather", [const("completion_emb", w[p + "completion_emb.Buckets.weight"]), "completion"], axis=0)])
    x = op("Add", [x, const("pos_emb", w[p + "pos_emb.weight"][None, :, :])])
    x = norm(x, p + "emb_norm")
    # Keys to ignore: padding (item 0) or in the future; burn fills their scores with -1e4.
    pad = op("Reshape", [op("Equal", [items, const("zero", np.array(0, dtype=np.int64))]),
                         const("pad_shape", np.array([1, 1, 1, max_len], dtype=np.int64))])
    future = np.triu(np.ones((max_len, max_len), dtype=bool), k=1)[None, None]
    masked = op("Or", [pad, const("future", future)])
    neg = const("neg", np.array(-1e4, dtype=np.float32))
    heads_shape = const("heads_shape", np.array([1, max_len, heads, dk], dtype=np.int64))
    flat_shape = const("flat_shape", np.array([1, max_len, d], dtype=np.int64))
    scale = const("scale", np.array(np.sqrt(dk), dtype=np.float32))
    for i in range(layers):
        lp = f"{p}encoder.layers.{i}."

        def split(t):
            return op("Transpose", [op("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3])

        q, kk, v = (split(linear(x, lp + "mha." + s)) for s in ("query", "key", "value"))
        s = op("Div", [op("MatMul", [q, op("Transpose", [kk], perm=[0, 1, 3, 2])]), scale])
        a = op("Softmax", [op("Where", [masked, neg, s])], axis=-1)
        ctx = op("Reshape", [op("Transpose", [op("MatMul", [a, v])], perm=[0, 2, 1, 3]), flat_shape])
        x = norm(op("Add", [x, linear(ctx, lp + "mha.output")]), lp + "norm_1")
        h = linear(x, lp + "pwff.linear_inner")
        h = op("Mul", [op("Mul", [h, const(f"half_{i}", np.array(0.5, dtype=np.float32))]),
                       op("Add", [op("Erf", [op("Div", [h, const(f"sqrt2_{i}", np.array(np.sqrt(2.0), dtype=np.float32))])]),
                                  const(f"one_{i}", np.array(1.0, dtype=np.float32))])])
        x = norm(op("Add", [x, linear(h, lp + "pwff.linear_outer")]), lp + "norm_2")
    last = op("Gather", [x, const("last", np.array(max_len - 1, dtype=np.int64))], axis=1)  # [1, d]
    table_t = np.ascontiguousarray(w[p + "item_emb.weight"][1 : n + 1].T)
    nodes.append(helper.make_node("MatMul", [last, const("item_table_t", table_t)], ["scores"]))
    nodes.append(helper.make_node("TopK", ["scores", const("k", np.array([k], dtype=np.int64))],
                                  ["top_scores", "top_items"], axis=-1, largest=1, sorted=1))
    inputs = [helper.make_tensor_value_info("items", TensorProto.INT64, [1, max_len])]
    if comp:
        inputs.append(helper.make_tensor_value_info("completion", TensorProto.INT64, [1, max_len]))
    outputs = [
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n]),
        helper.make_tensor_value_info("top_scores", TensorProto.FLOAT, [1, k]),
        helper.make_tensor_value_info("top_items", TensorProto.INT64, [1, k]),
    ]
    graph = helper.make_graph(nodes, "encore_sasrec", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="encore")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def numpy_forward(cfg, w, items, completion):
    """The same computation in numpy (float64), written independently of the graph."""
    from math import erf

    m = cfg["model"]
    p = "SasRec."
    d, heads, layers, max_len = m["d_model"], m["n_heads"], m["n_layers"], m["max_len"]
    dk = d // heads
    g = lambda k: w[p + k].astype(np.float64)

    def ln(x, pre):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * g(pre + ".gamma") + g(pre + ".beta")

    x = g("item_emb.weight")[items] + g("pos_emb.weight")
    if m.get("completion"):
        x = x + g("completion_emb.Buckets.weight")[completion]
    x = ln(x, "emb_norm")
    mask = (items == 0)[None, :] | np.triu(np.ones((max_len, max_len), dtype=bool), 1)
    verf = np.vectorize(erf)
    for i in range(layers):
        lp = f"encoder.layers.{i}."
        lin = lambda t, s: t @ g(lp + s + ".weight") + g(lp + s + ".bias")
        q, k, v = (lin(x, "mha." + s).reshape(max_len, heads, dk).transpose(1, 0, 2) for s in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(dk)
        s = np.where(mask[None], -1e4, s)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(max_len, d)
        x = ln(x + lin(ctx, "mha.output"), lp + "norm_1")
        h = lin(x, "pwff.linear_inner")
        h = 0.5 * h * (1 + verf(h / np.sqrt(2)))
        x = ln(x + lin(h, "pwff.linear_outer"), lp + "norm_2")
    return x[-1] @ g("item_emb.weight")[1 : m["n_items"] + 1].T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("tensors")
    ap.add_argument("out")
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args()
    cfg = json.load(open(f"{a.bundle}/config.json"))
    w = read_safetensors(a.tensors)
    model = build(cfg, w, a.k)
    onnx.save(model, a.out)
    m = cfg["model"]
    rng = np.random.default_rng(0)
    items = np.zeros(m["max_len"], dtype=np.int64)
    items[-30:] = rng.integers(1, m["n_items"] + 1, 30)
    completion = np.where(items > 0, rng.integers(0, 11, m["max_len"]), 0).astype(np.int64)
    ref = numpy_forward(cfg, w, items, completion)
    msg = f"{a.out}: {len(model.graph.node)} nodes, {sum(t.ByteSize() for t in model.graph.initializer)} bytes of weights"
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(a.out, providers=["CPUExecutionProvider"])
        feed = {"items": items[None]}
        if m.get("completion"):
            feed["completion"] = completion[None]
        scores, top_s, top_i = sess.run(None, feed)
        err = float(np.abs(scores[0] - ref).max())
        assert err < 1e-3, f"onnxruntime differs from the numpy forward by {err}"
        assert list(top_i[0]) == list(np.argsort(-ref, kind="stable")[: a.k]) or err < 1e-5
        msg += f"; onnxruntime {ort.__version__} (CPU) matches the numpy forward within {err:.1e}"
    except ImportError:
        msg += "; onnxruntime not installed, graph only checked by onnx.checker"
    print(msg)


if __name__ == "__main__":
    main()
