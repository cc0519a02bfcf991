#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with cargo-fuzz (libFuzzer, nightly toolchain):
#   scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s each, every target in fuzz/Cargo.toml)
# Corpora grow under $ENCORE_CACHE/fuzz/corpus/TARGET, seeded from fuzz/seeds/TARGET; a crash
# stops the run with the input saved under fuzz/artifacts/TARGET (reproduce with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^encore-fuzz$')
fi
fuzz_target="$ENCORE_CACHE/fuzz-target"
cargo +nightly fuzz build -O --target-dir "$fuzz_target" 2>&1 | tail -n 3
failed=()
for t in "${targets[@]}"; do
  corpus="$ENCORE_CACHE/fuzz/corpus/$t"
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  echo "== $t (${seconds} s)"
  log="$ENCORE_CACHE/fuzz/$t.log"
  if ! cargo +nightly fuzz run -O --target-dir "$fuzz_target" "$t" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
    failed+=("$t")
    grep -E 'panicked|ERROR|SUMMARY|artifact' "$log" | head -n 20
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]}" >&2
  exit 1
fi
