#!/usr/bin/env bash
# The whole test suite: set-up and build, then every CTest entry (C++ unit tests, the emulated
# AVX-512 kernel tests, PyTorch parity and CLI tests), then the sanitizer runs
# (scripts/sanitize.sh: ASan+UBSan, TSan) and a short fuzzing round (scripts/fuzz.sh, 30 s per
# target). Usage: bash scripts/test.sh [CTEST ARGS]
# With CTest arguments (a subset of tests), or TERN_SKIP_SANITIZERS=1, only the CTest step runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${TERN_BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure -j"$(nproc)" "$@")
if (($# == 0)) && [ "${TERN_SKIP_SANITIZERS:-0}" != 1 ]; then
  bash scripts/sanitize.sh
  bash scripts/fuzz.sh "${TERN_FUZZ_SECONDS:-30}"
fi
