#!/usr/bin/env bash
# The synthetic content targets: on logs whose preferences content explains (signal) and on logs
# where it explains nothing (noise), id-only SASRec against SASRec fused with the generator's
# latent vectors (the oracle) and with the tags derived from them (configs/ablation-synth.toml).
# Resumable; about 5 min per seed on one core (3 cells x 3 seeds x 2 logs).
#   scripts/ablate-synth.sh [signal|noise ...]        (default: both)
# Output: $ENCORE_CACHE/runs/synth-ablation/{signal,noise}/{ablation.md,.json,.svg, CELL/}.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --locked --quiet
encore="$CARGO_TARGET_DIR/debug/encore"
settings=("$@")
((${#settings[@]})) || settings=(signal noise)
for s in "${settings[@]}"; do
  case "$s" in
    signal) weight=0.8 ;;
    noise) weight=0 ;;
    *) echo "unknown setting $s (signal, noise)" >&2; exit 2 ;;
  esac
  root="$ENCORE_CACHE/synth-ablation/$s"
  mkdir -p "$root"
  if [ ! -f "$root/data/dataset.bin" ]; then
    echo "== $s: a synthetic log (content weight $weight) and its content"
    "$encore" data synth --lines 40000 --users 200 --tracks 2000 --content-weight "$weight" \
      --seed 1 -o "$root/log.tsv"
    # Track list, row keys of the latent vectors, tag lists (tracks without an MBID are keyed
    # by artist and title, as the data layer keys them).
    python3 - "$root" <<'PY'
import json, sys
root = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(f"{root}/log.tracks.tsv", encoding="utf-8")][1:]
key = lambda r: r[1] if r[1] else f"{r[3]}\t{r[4]}"
with open(f"{root}/tracks.tsv", "w", encoding="utf-8") as f:
    f.writelines(f"{r[1]}\t{r[3]}\t{r[4]}\n" for r in rows)
with open(f"{root}/ids.txt", "w", encoding="utf-8") as f:
    f.writelines(key(r) + "\n" for r in rows)
with open(f"{root}/tags.json", "w", encoding="utf-8") as f:
    json.dump({key(r): [t for t in r[6].split(",") if t] for r in rows}, f)
PY
    rm -rf "$root/features"
    "$encore" features import --store "$root/features" --tracks "$root/tracks.tsv" \
      --modality latent --model "encore data synth latent vectors" "$root/log.content.npy" \
      --ids "$root/ids.txt"
    "$encore" features tags --store "$root/features" "$root/tags.json"
    "$encore" data ingest -f lastfm1k --preset default --no-cache \
      --durations "$root/log.tracks.tsv" -o "$root/data" "$root/log.tsv"
  fi
  echo "== $s: ablation"
  "$encore" ablate --config configs/ablation-synth.toml --root "$root" --device cpu \
    -o "$ENCORE_CACHE/runs/synth-ablation/$s"
done
