#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with cargo-fuzz (libFuzzer, nightly toolchain):
#   scripts/fuzz.sh [SECONDS] [TARGET...]   each target for SECONDS (default 60; every target in
#                                           fuzz/Cargo.toml when none is named)
#   scripts/fuzz.sh --runs N [TARGET...]    each target for N executions (the long runs)
#   scripts/fuzz.sh --build                 only build the targets
#   scripts/fuzz.sh --seeds                 regenerate fuzz/seeds from the tests' inputs
# Corpora grow under $ENCORE_CACHE/fuzz/corpus/TARGET, seeded from fuzz/seeds/TARGET. A crash
# fails the run and saves the input under fuzz/artifacts/TARGET; reproduce it with
#   cargo +nightly fuzz run -s none --target-dir "$ENCORE_CACHE/fuzz-target" TARGET fuzz/artifacts/TARGET/crash-...
# Targets are built optimised with debug assertions (overflow checks) and without a sanitizer:
# the parsers are safe Rust, so a crash is a panic, an abort, a leak past -rss_limit_mb or a
# timeout. Inputs are at most FUZZ_MAX_LEN bytes (default 65536). Prints executions, speed and
# peak memory per target, and a JSON line per target to $ENCORE_CACHE/fuzz/runs.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: run scripts/setup.sh" >&2; exit 1; }
FT="$ENCORE_CACHE/fuzz-target"
build() {
  local log="$ENCORE_CACHE/fuzz/build.log"
  mkdir -p "$ENCORE_CACHE/fuzz"
  cargo +nightly fuzz build -s none --target-dir "$FT" >"$log" 2>&1 || { tail -n 40 "$log"; return 1; }
}

if [ "${1:-}" = "--seeds" ]; then
  tmp=$(mktemp -d)
  ENCORE_FUZZ_SEEDS="$tmp" cargo test --locked --test data --test features --test llm --test bundle -- --test-threads 1 >/dev/null
  for dir in "$tmp"/*/; do
    t=$(basename "$dir")
    mkdir -p "fuzz/seeds/$t"
    find "fuzz/seeds/$t" -type f ! -name 'hand-*' -delete
    cp "$dir"* "fuzz/seeds/$t/"
  done
  rm -rf "$tmp"
  find fuzz/seeds -type f | sed 's|/[^/]*$||' | sort | uniq -c
  exit 0
fi
limit=(-max_total_time=60)
case "${1:-}" in
  --build) build; exit ;;
  --runs) limit=(-runs="$2"); shift 2 ;;
  [0-9]*) limit=(-max_total_time="$1"); shift ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^encore-fuzz$')
fi
build
failed=()
mkdir -p "$ENCORE_CACHE/fuzz"
printf '%-8s %12s %9s %8s %7s  %s\n' target executions exec/s rss_mb corpus result
for t in "${targets[@]}"; do
  corpus="$ENCORE_CACHE/fuzz/corpus/$t"
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  log="$ENCORE_CACHE/fuzz/$t.log"
  t0=$SECONDS
  result=ok
  if ! cargo +nightly fuzz run -s none --target-dir "$FT" "$t" "$corpus" -- "${limit[@]}" \
    -rss_limit_mb=4096 -malloc_limit_mb=4096 -timeout=20 -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1 >"$log" 2>&1; then
    failed+=("$t")
    result=CRASH
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
  dt=$((SECONDS - t0))
  rate=$(( ${runs:-0} / (dt > 0 ? dt : 1) ))
  printf '%-8s %12s %9s %8s %7s  %s\n' "$t" "${runs:-?}" "$rate" "${rss:-?}" "$(ls "$corpus" | wc -l)" "$result"
  printf '{"target": "%s", "executions": %s, "seconds": %s, "peak_rss_mb": %s, "result": "%s", "date": "%s"}\n' \
    "$t" "${runs:-null}" "$dt" "${rss:-null}" "$result" "$(date -u +%FT%TZ)" >>"$ENCORE_CACHE/fuzz/runs.jsonl"
  if [ "$result" != ok ]; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|out-of-memory|timeout' "$log" | head -n 20
  fi
done
echo "fuzz targets: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
