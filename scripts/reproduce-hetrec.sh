#!/usr/bin/env bash
# Reproduction: SASRec, BERT4Rec and GRU4Rec on Last.fm HetRec (S3-Rec's preprocessed file and its
# published negatives, protocol loo-sampled99), 5 seeds each, against S3-Rec's SASRec anchor
# (HR@10 0.4706, NDCG@10 0.2755). Runs resume where they stopped; finished runs are only re-read.
#   scripts/reproduce-hetrec.sh [SEEDS] [MODELS...]     (default: 5 sasrec-stride sasrec bert4rec gru4rec)
# sasrec-stride is SASRec trained on overlapping windows (--window-stride 25: every target sees at
# least 25 plays of history where the user has them); sasrec tiles the windows (the item encoder
# of scripts/e4srec-hetrec.sh).
# Data: $ENCORE_SHARED_DATA/lastfm-hetrec-s3rec, else ../shared/data/lastfm-hetrec-s3rec beside
# the checkout. Runs go to $ENCORE_CACHE/runs/hetrec/MODEL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seeds="${1:-5}"
shift || true
models=("$@")
((${#models[@]})) || models=(sasrec-stride sasrec bert4rec gru4rec)
data="${ENCORE_SHARED_DATA:-$ENCORE_ROOT/../shared/data}/lastfm-hetrec-s3rec"
[ -f "$data/LastFM.txt" ] || { echo "no $data/LastFM.txt (set ENCORE_SHARED_DATA)" >&2; exit 1; }
data="$(realpath "$data")"   # run.json records the path; resuming compares it
cargo build --locked --quiet
encore="$CARGO_TARGET_DIR/debug/encore"
runs="$ENCORE_CACHE/runs/hetrec"
mkdir -p "$runs"
jobs="${ENCORE_JOBS:-$(( $(nproc) < seeds ? $(nproc) : seeds ))}"   # ENCORE_JOBS=N overrides
for m in "${models[@]}"; do
  model="$m"
  case "$m" in
    sasrec-stride) model=sasrec; extra=(--set dropout=0.5 --window-stride 25) ;;
    sasrec) extra=(--set dropout=0.5) ;;
    bert4rec) extra=(--set dropout=0.5 --epochs 400 --patience 40) ;;
    gru4rec) extra=() ;;
    *) echo "unknown model $m" >&2; exit 2 ;;
  esac
  echo "== $m ($seeds seeds, $jobs at a time)"
  "$encore" train --data "$data/LastFM.txt" --format s3rec --model "$model" \
    --protocol loo-sampled99 --samples "$data/LastFM_sample.txt" --seeds "$seeds" --jobs "$jobs" \
    --device cpu "${extra[@]}" -o "$runs/$m" > "$runs/$m.log"
done
python3 - "$runs" "${models[@]}" <<'PY'
import json, sys
runs, models = sys.argv[1], sys.argv[2:]
print("\nLast.fm HetRec, loo-sampled99 (S3-Rec's negatives), mean over seeds [95 % CI]")
print("| model | seeds | HR@1 | HR@5 | HR@10 | NDCG@5 | NDCG@10 | MRR | full HR@10 | full NDCG@10 |")
print("|---|---|---|---|---|---|---|---|---|---|")
print("| S3-Rec paper's SASRec (anchor) | 1 | | | 0.4706 | | 0.2755 | | | |")
for m in models:
    r = json.load(open(f"{runs}/{m}/results.json"))
    f = lambda sec, k: "%.4f [%.4f, %.4f]" % (r[sec][k]["mean"], *r[sec][k]["ci95"])
    print(f"| Encore {m} | {len(r['seeds'])} | " + " | ".join(
        [f("metrics", k) for k in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR")]
        + [f("metrics_full", k) for k in ("HR@10", "NDCG@10")]) + " |")
PY
