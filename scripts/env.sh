# Shared environment for Encore's scripts: source it, don't run it.
# Everything downloaded or built lives outside the clone, under $ENCORE_CACHE, so a fresh clone
# reuses tools, assets and compiled dependencies.
ENCORE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ENCORE_ROOT
export ENCORE_CACHE="${ENCORE_CACHE:-$HOME/.cache/encore}"
export ENCORE_ASSETS="${ENCORE_ASSETS:-$ENCORE_CACHE/assets}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ENCORE_CACHE/target}"
export ENCORE_TOOLS="$ENCORE_CACHE/tools"
# llama-cpp-python and its OpenAI-compatible server (tests and the LLM benchmark).
export ENCORE_LLAMACPP_VENV="${ENCORE_LLAMACPP_VENV:-$ENCORE_CACHE/venv-llamacpp}"
export PATH="$ENCORE_TOOLS/bin:$ENCORE_ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# wgpu/Vulkan loaders warn without a runtime dir.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$ENCORE_CACHE/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# Browser tests: real WebGPU through Chromium's SwiftShader.
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
