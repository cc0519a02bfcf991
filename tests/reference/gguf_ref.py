"""Dequantizes GGUF tensors with llama.cpp's own Python package (gguf-py), the reference for
Encore's reader: writes each named tensor as raw little-endian float32 into OUT_DIR/NAME.f32.

    python gguf_ref.py MODEL.gguf OUT_DIR NAME [NAME ...]
"""
import os
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def main():
    path, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    reader = GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    for name in names:
        t = by_name[name]
        values = dequantize(t.data, t.tensor_type).astype("<f4", copy=False)
        assert values.size == int(np.prod(t.shape)), (name, values.shape, t.shape)
        values.tofile(os.path.join(out_dir, name + ".f32"))


if __name__ == "__main__":
    main()
