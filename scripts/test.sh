#!/usr/bin/env bash
# The whole test suite: set-up and build, then every CTest entry (C++ unit tests, the emulated
# AVX-512 kernel tests, PyTorch parity and CLI tests). Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${TERN_BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure -j"$(nproc)" "$@"
