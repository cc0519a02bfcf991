#!/usr/bin/env bash
# Encore vs onnxruntime-web in the same headless Chromium (scripts/bench/onnx-latency.mjs): the
# demo's float32 SASRec exported to ONNX (scripts/bench/onnx_sasrec.py, checked against a numpy
# forward with onnxruntime's CPU build), onnxruntime-web's files served from the app's origin.
#   scripts/bench-onnx.sh [RUNS]          (after scripts/run.sh or trunk build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ -f dist/index.html ] && [ -f dist/models/demo-fp32/manifest.json ] || {
  echo "no dist/ with the demo bundles: run scripts/run.sh (or scripts/demo-model.sh and trunk build --release) first" >&2; exit 1; }
# onnxruntime-web (139 MB unpacked) only for this benchmark: not in package.json, so the tests
# do not download it.
[ -f node_modules/onnxruntime-web/dist/ort.all.min.js ] &&
  [ "$(node -p "require('./node_modules/onnxruntime-web/package.json').version")" = 1.30.0 ] ||
  npm install --no-save --no-audit --no-fund onnxruntime-web@1.30.0
"$ENCORE_CACHE/pyenv/bin/python" -c "import onnx, onnxruntime" 2>/dev/null ||
  "$ENCORE_CACHE/pyenv/bin/pip" install -q onnx==1.17.0 onnxruntime==1.20.1
cargo build --locked --quiet
mkdir -p target/bench dist/bench/ort
"$CARGO_TARGET_DIR/debug/encore" export "$ENCORE_CACHE/demo-model/sasrec-completion" \
  --catalog models/music/catalog.json --quantize none --simulated --name "Demo (SASRec, float32)" \
  -o models/demo-fp32 --tensors target/bench/demo-fp32.safetensors >/dev/null
cmp -s models/demo-fp32/model.bpk dist/models/demo-fp32/model.bpk || {
  echo "dist/models/demo-fp32 differs from models/demo-fp32: rebuild dist (trunk build --release)" >&2; exit 1; }
"$ENCORE_CACHE/pyenv/bin/python" scripts/bench/onnx_sasrec.py models/demo-fp32 \
  target/bench/demo-fp32.safetensors dist/bench/sasrec.onnx
cp node_modules/onnxruntime-web/dist/ort.all.min.js node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.jsep.{mjs,wasm} \
  node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.{mjs,wasm} dist/bench/ort/
node scripts/bench/onnx-latency.mjs "${1:-100}"
