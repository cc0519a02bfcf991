#!/usr/bin/env bash
# Benchmark: Encore's SASRec against RecBole 1.2.1's SASRec on MovieLens-100K, same split
# (leave-one-out in time order, ties in file order), same hyper-parameters (d 64, feed-forward
# 256, 2 blocks, 2 heads, max length 50, dropout 0.2, cross-entropy over all items, Adam at a
# constant 1e-3, batch 256, early stopping on validation NDCG@10 with patience 10), full ranking
# without masking seen items (RecBole's), on the same cores, one after the other.
# Prints NDCG@10, Recall@10, MRR@10 and training throughput of both; writes
# $ENCORE_CACHE/bench/recbole-sasrec/{recbole.json,encore/results.json,summary.json}.
#   scripts/bench-recbole.sh [EPOCHS]      (default 200; early stopping usually ends sooner)
#   ENCORE_BENCH_THREADS=N scripts/bench-recbole.sh    both on N cores (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
epochs="${1:-200}"
threads="${ENCORE_BENCH_THREADS:-$(nproc)}"
venv="$ENCORE_CACHE/bench/venv-recbole"
out="$ENCORE_CACHE/bench/recbole-sasrec"
mkdir -p "$out"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import recbole, torch' 2>/dev/null; then
  echo "== installing RecBole 1.2.1 and torch into $venv (about 3 GB from PyPI, 2 minutes)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/bench/requirements-recbole.txt
fi
inter="$(find "$ENCORE_ASSETS/ml-100k" -name ml-100k.inter | head -n 1)"
[ -n "$inter" ] || { echo "ml-100k.inter not in $ENCORE_ASSETS (run scripts/setup.sh)" >&2; exit 1; }
echo "== building encore"
cargo build --locked --quiet
encore="$CARGO_TARGET_DIR/debug/encore"

echo "== RecBole SASRec ($threads threads)"
"$venv/bin/python" scripts/bench/recbole_sasrec.py --data "$inter" --epochs "$epochs" \
  --patience 10 --batch 256 --dropout 0.2 --threads "$threads" --json "$out/recbole.json" \
  2> "$out/recbole.log" > /dev/null

echo "== Encore SASRec (flex, $threads cores)"
rm -rf "$out/encore"
RAYON_NUM_THREADS="$threads" "$encore" train --data "$inter" --format recbole --model sasrec --protocol loo-full \
  --seeds 1 --epochs "$epochs" --patience 10 --batch-size 256 --lr 1e-3 --warmup 0 \
  --decay none --weight-decay 0 --grad-clip 0 --loss ce --valid-metric NDCG@10 \
  --set d_model=64 --set d_ff=256 --set n_layers=2 --set n_heads=2 --set max_len=50 \
  --set dropout=0.2 --device cpu -o "$out/encore" > "$out/encore.log"

python3 scripts/bench/recbole_compare.py "$out/recbole.json" "$out/encore/results.json" \
  "$out/summary.json"
