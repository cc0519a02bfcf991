#!/usr/bin/env bash
# Benchmark: `encore data ingest --preset paper` against the same preprocessing in polars, on a
# synthetic LastFM-1K-sized log (19,150,868 lines; generated once, ~2.3 GB, kept in the cache).
# Prints wall time, peak RSS and per-step counts of both, and fails if the counts disagree.
#   scripts/bench-ingest.sh [LINES]        (default 19150868)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
lines="${1:-19150868}"
bench="$ENCORE_CACHE/bench"
venv="$ENCORE_CACHE/venv-bench"
mkdir -p "$bench"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import polars' 2>/dev/null; then
  echo "== installing polars into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet polars==2.1.0
fi
echo "== building encore (release)"
cargo build --release --locked --quiet
encore="$CARGO_TARGET_DIR/release/encore"
log="$bench/lastfm-synth-$lines.tsv"
if [ ! -f "$log" ]; then
  echo "== writing a synthetic $lines-line log"
  "$encore" data synth --lines "$lines" --seed 0 -o "$log"
fi
echo "== running both"
python3 scripts/bench/ingest.py "$encore" "$venv/bin/python" "$log" "$bench/out-$lines"
