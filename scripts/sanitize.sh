#!/usr/bin/env bash
# Sanitizer runs, each in its own build directory (Debug, -O1, so debug-build contract asserts
# are on):
#   asan: AddressSanitizer + UndefinedBehaviorSanitizer (-fno-sanitize-recover=all: the first
#         report fails the test) over every C++ CTest entry, and the Python CLI tests with the
#         sanitized `tern` (TERN_BIN points at it). build-asan/
#   tsan: ThreadSanitizer over the tests about threads: doctest cases whose names contain
#         "thread", "concurren" or "parallel" (the pool, concurrent model use, concurrent decodes).
#         build-tsan/
#
#   bash scripts/sanitize.sh            # both
#   bash scripts/sanitize.sh asan       # one
#
# Not run under ASan, and why:
#   - Python tests other than the CLI, robustness and server ones: they are PyTorch parity checks
#     of the full models, which ASan (~3x) and the -O1 build (~5-10x against the release kernels)
#     would stretch past CI's time, while the same code paths run in the C++ tests and the CLI
#     tests.
#     TERN_ASAN_PY_TESTS (a CTest regex) picks the Python tests that run.
#   - TERN_ASAN_EXCLUDE (a CTest regex, empty by default) drops heavy C++ cases.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${TERN_JOBS:-$(nproc)}
STEPS=("$@")
((${#STEPS[@]})) || STEPS=(asan tsan)

configure() {  # configure BUILD_DIR SANITIZERS
  if [ ! -f "$1/build.ninja" ]; then
    cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DTERN_SANITIZE="$2" >/dev/null
  fi
}

run_asan() {
  local dir=build-asan
  configure "$dir" address,undefined
  # Not tern_tests_avx512emu: the AVX-512 kernels run under ASan natively in tern_tests on an
  # AVX-512 machine; emulated through SIMDe they would double the build for little more coverage.
  # The C++ tests, and what the Python CLI tests run: tern and the test tools.
  local targets=(tern_tests tern_cli tern_run_model tern_image_dump)  # tern_cli: also tern serve
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]}" -- --quiet
  # allocator_may_return_null: an absurd allocation must surface as tern::Error / bad_alloc (N8),
  # as it would without ASan, instead of ASan's own abort.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  local exclude=${TERN_ASAN_EXCLUDE:-}
  echo "sanitize: ASan+UBSan: C++ tests"
  exclude="avx512-emulated${exclude:+|$exclude}"
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" -LE python -E "$exclude")
  local py=${TERN_ASAN_PY_TESTS:-'^py\.test_(robustness_cli|cli|cli_hardening|server.*)$'}
  if (cd "$dir" && ctest -N -L python -R "$py" | grep -q 'Total Tests: [1-9]'); then
    echo "sanitize: ASan+UBSan: Python CLI tests with the sanitized tern"
    (cd "$dir" && ctest --output-on-failure -j "$JOBS" -L python -R "$py")
  fi
}

run_tsan() {
  local dir=build-tsan
  configure "$dir" thread
  cmake --build "$dir" -j "$JOBS" --target tern_tests -- --quiet
  export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
  echo "sanitize: ThreadSanitizer: thread pool and concurrent-use tests"
  "$dir/tests/tern_tests" -tc='*thread*,*concurren*,*parallel*' --no-intro
}

for step in "${STEPS[@]}"; do
  case "$step" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "sanitize: unknown step '$step' (asan | tsan)" >&2; exit 2 ;;
  esac
done
