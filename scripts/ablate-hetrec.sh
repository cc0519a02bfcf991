#!/usr/bin/env bash
# The content ablation on Last.fm HetRec (configs/ablation-hetrec.toml): id-only SASRec against
# SASRec fused with the tracks' tags (concat, sum, gate, xattn, film) and the content-only
# encoder, 5 seeds each, paired per-user lifts. Resumable: finished cells are skipped, a killed
# cell resumes from its checkpoints. Fused cells stop early after about 35 epochs (8-15 min per
# seed on one core), id-only SASRec after about 125 (about 25 min).
# Then the cold-start ablation (configs/ablation-hetrec-cold.toml): 3 seeds of id-only,
# content-only and concat SASRec on cases whose target track never occurs in training.
#   scripts/ablate-hetrec.sh [--only CELL] [--jobs N]
# Data: $ENCORE_SHARED_DATA/lastfm-hetrec-s3rec, else ../shared/data beside the checkout.
# Output: $ENCORE_CACHE/runs/hetrec-ablation/{ablation.md,ablation.json,ablation.svg, CELL/}.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
root="${ENCORE_SHARED_DATA:-$ENCORE_ROOT/../shared/data}"
[ -f "$root/lastfm-hetrec-s3rec/LastFM.txt" ] || {
  echo "no $root/lastfm-hetrec-s3rec/LastFM.txt (set ENCORE_SHARED_DATA)" >&2; exit 1; }
root="$(realpath "$root")"   # run.json records absolute paths; resuming compares them
cargo build --locked --quiet
out="$ENCORE_CACHE/runs/hetrec-ablation"
mkdir -p "$out"
# The id-only cell has the settings of scripts/reproduce-hetrec.sh's SASRec: reuse that run when
# it exists (encore ablate still checks that its recorded settings are the cell's).
if [ -f "$ENCORE_CACHE/runs/hetrec/sasrec/results.json" ] && [ ! -e "$out/sasrec-id" ]; then
  cp -r "$ENCORE_CACHE/runs/hetrec/sasrec" "$out/sasrec-id"
fi
"$CARGO_TARGET_DIR/debug/encore" ablate --config configs/ablation-hetrec.toml --root "$root" \
  --device cpu -o "$out" "$@"
"$CARGO_TARGET_DIR/debug/encore" ablate --config configs/ablation-hetrec-cold.toml --root "$root" \
  --device cpu -o "$ENCORE_CACHE/runs/hetrec-cold" "$@"
