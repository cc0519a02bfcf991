#!/usr/bin/env bash
# The main job: sets up (idempotently), builds and runs the native demo, then builds the web app
# and serves it on http://127.0.0.1:8080 until Ctrl-C.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENCORE_ROOT"

bash scripts/setup.sh

printf '\n\033[1m== native demo\033[0m: encore doctor\n'
cargo run --locked --quiet -- doctor

demo="$ENCORE_CACHE/demo"
printf '\n\033[1m== native demo\033[0m: a synthetic listening log through the paper preset into a temporal split (%s)\n' "$demo"
cargo run --locked --quiet -- data synth --lines 300000 --users 60 --seed 0 -o "$demo/synth.tsv"
cargo run --locked --quiet -- data ingest -f lastfm1k --preset paper --durations "$demo/synth.tracks.tsv" \
  "$demo/synth.tsv" -o "$demo/paper"
cargo run --locked --quiet -- data split "$demo/paper" --scheme temporal --candidates sampled-200
printf '\n\033[1m== native demo\033[0m: SASRec trained on it for 3 epochs, evaluated on the paper protocol (%s)\n' "$demo/sasrec"
cargo run --locked --quiet -- train --data "$demo/paper" --model sasrec --protocol temporal-sampled200 \
  --seeds 1 --epochs 3 --device cpu -o "$demo/sasrec"

printf '\n\033[1m== native demo\033[0m: musicnn on "Vibe Ace" (audio embedding and tags into a feature store, %s)\n' "$demo/features"
cargo run --locked --quiet -- features audio --store "$demo/features" --dir "$ENCORE_ASSETS/vibe-ace" --force

printf '\n\033[1m== web app\033[0m: the demo catalog and model bundles (models/)\n'
bash scripts/demo-model.sh
printf '\n\033[1m== web app\033[0m: trunk builds it, then serves it\n'
echo "Encore will be served on http://127.0.0.1:8080 once built (Ctrl-C to stop)."
echo "Open it in a browser with WebGPU (Chrome/Chromium 113+, Edge, Firefox 141+); others fall back to the CPU."
exec trunk serve --release --skip-version-check --no-autoreload --address 127.0.0.1 --port 8080
