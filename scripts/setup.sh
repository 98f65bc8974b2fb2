#!/usr/bin/env bash
# Installs what Tern needs (Debian 12 packages, only those missing), builds it into build/ and
# installs the Python package (`import tern` from any directory) when building everything or the
# tern_python target. Idempotent and quiet when there is nothing to do.
# Usage: bash scripts/setup.sh [TARGET ...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(cmake ninja-build g++ pkg-config libeigen3-dev libstb-dev nlohmann-json3-dev doctest-dev
          libutf8proc-dev libsimde-dev clang libclang-rt-14-dev
          python3-torch python3-torchvision python3-numpy python3-pil
          pybind11-dev python3-pybind11 python3-dev python3-pip python3-setuptools python3-wheel
          python3-tqdm libcpp-httplib-dev python3-distributed python3-regex curl
          libopenblas0-openmp)
# libopenblas0-openmp: Debian's python3-torch (the parity tests' reference and a benchmark peer)
# links libblas.so.3, which is otherwise the reference BLAS: ViT-B/16 then took 8.9 s a forward
# pass against 0.36 s on OpenBLAS here. Its OpenMP build follows torch.set_num_threads.
# Node.js runs the test peers from npm (onnxruntime-node, the openai client, HF tokenizers).
command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)
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
want_python=$(( $# == 0 ))
for t in "$@"; do [ "$t" != tern_python ] || want_python=1; done
# A build directory configured before pybind11 was installed has no tern_python target yet.
if [ -f "$BUILD_DIR/build.ninja" ] && ((want_python)) && ! grep -q tern_python "$BUILD_DIR/build.ninja"; then
  cmake -S . -B "$BUILD_DIR" >/dev/null
fi
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

# ---- the Python package (issue 16) ------------------------------------------------------------
# pip installs the source tree into /usr/local/lib/python3.*/dist-packages, reusing the extension
# just built in $BUILD_DIR (setup.py). Debian's pip refuses the system interpreter without
# --break-system-packages (PEP 668); --no-deps: numpy, PIL, tqdm and torch are Debian's.
# Skipped when nothing changed since the last install and `import tern` works from /.
# TERN_PIP_ARGS adds pip options (the tests use --root DIR to install elsewhere).
if ((want_python)); then
  stamp="$BUILD_DIR/python/installed.stamp"
  sum=$( { find python/tern weights_tools -name '*.py' | LC_ALL=C sort | xargs cat
           cat setup.py pyproject.toml data/vocab/*.txt "$BUILD_DIR"/python/tern/_tern*.so
           echo "${TERN_PIP_ARGS:-}"; } | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ] ||
     ! (cd / && /usr/bin/python3 -c "import tern._tern" 2>/dev/null); then
    # shellcheck disable=SC2086  # TERN_PIP_ARGS is a list of options
    if ! log=$(TERN_BUILD_DIR="$BUILD_DIR" PIP_DISABLE_PIP_VERSION_CHECK=1 /usr/bin/python3 -m pip \
                 install --quiet --no-build-isolation --no-deps --no-index --break-system-packages \
                 --root-user-action=ignore ${TERN_PIP_ARGS:-} . 2>&1); then
      printf '%s\n' "$log" >&2
      echo "setup: installing the Python package failed" >&2
      exit 1
    fi
    echo "$sum" > "$stamp"
  fi
fi
