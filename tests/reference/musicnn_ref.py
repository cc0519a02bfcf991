"""An independent numpy implementation of musicnn (MSD) for Encore's reference checks.

Written from musicnn's models.py and extractor.py (librosa 0.7 front end), not from Encore's Rust
code. Reads the weights from the safetensors file that `encore features convert-musicnn` writes
(TensorFlow names and layouts), a raw little-endian float32 file of 16 kHz mono audio, and writes
a JSON with the log-mel representation and per-patch outputs.

    python3 musicnn_ref.py WEIGHTS.safetensors AUDIO_16K.f32 OUT.json
"""
import json
import struct
import sys

import numpy as np

SR, N_FFT, HOP, N_MELS, FRAMES = 16000, 512, 256, 96, 187


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    mels = f / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters():
    fftfreqs = np.linspace(0, SR / 2, 1 + N_FFT // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SR / 2), N_MELS + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    weights = np.zeros((N_MELS, len(fftfreqs)))
    for i in range(N_MELS):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : N_MELS + 2] - mel_f[:N_MELS]))[:, None]
    return weights.astype(np.float32)


def log_mel(y):
    y = np.pad(y, N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(y) - N_FFT) // HOP
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT))
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(y[idx].astype(np.float64) * window, axis=1).astype(np.complex64)
    power = (np.abs(spec) ** 2).astype(np.float32)
    mel = power @ mel_filters().T
    return np.log10(10000 * np.minimum(mel, 65504).astype(np.float16).astype(np.float32) + 1)


def batch_norm(x, w, name, eps=1e-3):
    return (x - w[name + "/moving_mean"]) / np.sqrt(w[name + "/moving_variance"] + eps) * w[name + "/gamma"] + w[name + "/beta"]


def conv_valid(x, k, b):
    """x: [T, F, Cin]; k: [kh, kw, Cin, Cout] (TensorFlow); valid cross-correlation."""
    kh, kw, cin, cout = k.shape
    t, f = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    cols = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))  # [t, f, cin, kh, kw]
    return np.einsum("tfcij,ijco->tfo", cols, k, optimize=True) + b


def relu(x):
    return np.maximum(x, 0)


def musicnn(patch, w):
    """patch: [187, 96] -> (50 probabilities, 200-d penultimate)."""
    x = batch_norm(patch[:, :, None], w, "batch_normalization")
    front = []
    padded = np.pad(x, ((3, 3), (0, 0), (0, 0)))
    for conv, bn in (("conv2d", "batch_normalization_1"), ("conv2d_1", "batch_normalization_2")):
        y = batch_norm(relu(conv_valid(padded, w[conv + "/kernel"], w[conv + "/bias"])), w, bn)
        front.append(y.max(axis=1))
    for conv, bn in (("conv2d_2", "batch_normalization_3"), ("conv2d_3", "batch_normalization_4"), ("conv2d_4", "batch_normalization_5")):
        k = w[conv + "/kernel"].shape[0]
        p = np.pad(x, (((k - 1) // 2, k - 1 - (k - 1) // 2), (0, 0), (0, 0)))
        y = batch_norm(relu(conv_valid(p, w[conv + "/kernel"], w[conv + "/bias"])), w, bn)
        front.append(y.max(axis=1))
    front = np.concatenate(front, axis=1)  # [T, 561]
    feats = [front]
    prev = front
    for i, (conv, bn) in enumerate((("conv2d_5", "batch_normalization_6"), ("conv2d_6", "batch_normalization_7"), ("conv2d_7", "batch_normalization_8"))):
        p = np.pad(prev, ((3, 3), (0, 0)))[:, :, None]  # [T+6, C, 1]
        y = conv_valid(p, w[conv + "/kernel"], w[conv + "/bias"])[:, 0, :]  # [T, 64]
        y = batch_norm(relu(y), w, bn)
        if i > 0:
            y = y + prev
        feats.append(y)
        prev = y
    mid = np.concatenate(feats, axis=1)  # [T, 753]
    pooled = np.stack([mid.max(axis=0), mid.mean(axis=0)], axis=1).reshape(-1)
    pooled = batch_norm(pooled, w, "batch_normalization_9")
    dense = batch_norm(relu(pooled @ w["dense/kernel"] + w["dense/bias"]), w, "batch_normalization_10")
    logits = dense @ w["dense_1/kernel"] + w["dense_1/bias"]
    return 1 / (1 + np.exp(-logits)), dense


def main():
    weights, audio, out = sys.argv[1:4]
    w = {k: v.astype(np.float64) for k, v in read_safetensors(weights).items()}
    y = np.fromfile(audio, dtype="<f4")
    rep = log_mel(y)
    patches = [rep[s : s + FRAMES] for s in range(0, rep.shape[0] - FRAMES + 1, FRAMES)]
    tags, emb = zip(*(musicnn(p.astype(np.float64), w) for p in patches))
    json.dump({"log_mel": rep.tolist(), "tags": np.array(tags).tolist(), "embedding": np.array(emb).tolist()}, open(out, "w"))


if __name__ == "__main__":
    main()
