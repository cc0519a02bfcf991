#!/usr/bin/env bash
# Idempotent set-up of everything Encore needs on a fresh Debian 12 machine:
# system packages (Chromium + chromedriver, Mesa Vulkan), the wasm target, trunk,
# wasm-bindgen-cli, mdbook and cargo-fuzz (cached under $ENCORE_CACHE/tools; fuzzing also needs
# the nightly toolchain), the npm packages from the lockfile, the
# Python references (numpy, gguf; llama-cpp-python with its server), and the offline assets listed in scripts/assets.tsv, each verified by sha256.
# A second run only checks: nothing is downloaded or built again.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh --no-assets  skip the model/music/data assets
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
MDBOOK_VERSION=0.5.4
CARGO_FUZZ_VERSION=0.13.2
WITH_ASSETS=1
for arg in "$@"; do
  case "$arg" in
    --no-assets) WITH_ASSETS=0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "system packages"
APT_PACKAGES=(chromium chromium-driver mesa-vulkan-drivers libvulkan1 vulkan-tools
  ca-certificates xz-utils g++)
command -v node >/dev/null || APT_PACKAGES+=(nodejs npm)
command -v python3 >/dev/null || APT_PACKAGES+=(python3)
python3 -m pip --version >/dev/null 2>&1 || APT_PACKAGES+=(python3-pip)
python3 -m venv --help >/dev/null 2>&1 || APT_PACKAGES+=(python3-venv)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "all present"
fi

step "rust targets"
rustup target list --installed | grep -qx wasm32-unknown-unknown ||
  rustup target add wasm32-unknown-unknown
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

step "trunk $TRUNK_VERSION and wasm-bindgen-cli $WASM_BINDGEN_VERSION (cached in $ENCORE_TOOLS)"
mkdir -p "$ENCORE_TOOLS"
if ! "$ENCORE_TOOLS/bin/trunk" --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  cargo install trunk --version "$TRUNK_VERSION" --locked --root "$ENCORE_TOOLS"
fi
if ! "$ENCORE_TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  # Not --locked: its lockfile pins a crate version the registry lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$ENCORE_TOOLS"
fi
trunk --version
wasm-bindgen --version

step "mdbook $MDBOOK_VERSION (the book in docs/; cached in $ENCORE_TOOLS)"
if ! "$ENCORE_TOOLS/bin/mdbook" --version 2>/dev/null | grep -q "$MDBOOK_VERSION"; then
  cargo install mdbook --version "$MDBOOK_VERSION" --locked --root "$ENCORE_TOOLS"
fi
mdbook --version

step "cargo-fuzz $CARGO_FUZZ_VERSION and the nightly toolchain it needs (scripts/fuzz.sh; cached in $ENCORE_TOOLS)"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! "$ENCORE_TOOLS/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$ENCORE_TOOLS"
fi
cargo +nightly fuzz --version

step "npm packages (playwright-core, binaryen's wasm-opt) from package-lock.json"
(cd "$ENCORE_ROOT" && if [ -d node_modules/playwright-core ] && [ -d node_modules/binaryen ] &&
  [ node_modules/.package-lock.json -nt package-lock.json ]; then echo "up to date"; else
  npm ci --no-audit --no-fund --loglevel=error; fi)
wasm-opt --version

step "numpy and gguf (llama.cpp's reader) for the references in tests/reference ($ENCORE_CACHE/pyenv)"
NUMPY_VERSION=2.2.6
GGUF_VERSION=0.17.1
if ! "$ENCORE_CACHE/pyenv/bin/python" -c "import numpy, gguf, sys, importlib.metadata as m; sys.exit(numpy.__version__ != '$NUMPY_VERSION' or m.version('gguf') != '$GGUF_VERSION')" 2>/dev/null; then
  python3 -m venv "$ENCORE_CACHE/pyenv"
  "$ENCORE_CACHE/pyenv/bin/pip" install -q "numpy==$NUMPY_VERSION" "gguf==$GGUF_VERSION"
fi
"$ENCORE_CACHE/pyenv/bin/python" -c "import numpy, importlib.metadata as m; print('numpy', numpy.__version__, 'gguf', m.version('gguf'))"

step "llama-cpp-python 0.3.16 and its server, for the server-tagging tests ($ENCORE_LLAMACPP_VENV)"
# Built from source (PyPI has no binary wheel): llama.cpp compiles once, 10-20 minutes on 2 cores.
if ! "$ENCORE_LLAMACPP_VENV/bin/python" -c "import llama_cpp, llama_cpp.server.app, sys; sys.exit(llama_cpp.__version__ != '0.3.16')" 2>/dev/null; then
  python3 -m venv "$ENCORE_LLAMACPP_VENV"
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$ENCORE_LLAMACPP_VENV/bin/python" -m pip install -q \
    -r "$ENCORE_ROOT/scripts/requirements-llamacpp.txt"
fi
"$ENCORE_LLAMACPP_VENV/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"

if ((WITH_ASSETS)); then
  step "offline assets into $ENCORE_ASSETS"
  bash "$ENCORE_ROOT/scripts/fetch-assets.sh"
fi

step "set-up complete"
