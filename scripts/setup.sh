#!/usr/bin/env bash
# Installs what Tern needs (Debian 12 packages, only those missing) and builds it into build/.
# Idempotent and quiet when there is nothing to do. Usage: bash scripts/setup.sh [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(cmake ninja-build g++ pkg-config libeigen3-dev libstb-dev nlohmann-json3-dev doctest-dev
          libutf8proc-dev libsimde-dev clang libclang-rt-14-dev
          python3-torch python3-torchvision python3-numpy python3-pil)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Targets to build: the arguments (e.g. tern_cli), or everything.
BUILD_DIR=${TERN_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  echo "setup: configuring and building in $BUILD_DIR (a few minutes the first time)" >&2
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
if ! log=$(cmake --build "$BUILD_DIR" "${targets[@]}" -- --quiet 2>&1); then
  printf '%s\n' "$log" >&2
  echo "setup: build failed" >&2
  exit 1
fi
[ -z "$log" ] || printf '%s\n' "$log" | grep -v '^ninja: no work to do' >&2 || true
test -x "$BUILD_DIR/tern"
