#!/usr/bin/env bash
# libFuzzer over Tern's parsers: builds tests/fuzz/*_fuzz.cpp with clang + AddressSanitizer +
# UndefinedBehaviorSanitizer into build-fuzz/, replays the saved regression inputs
# (tests/fuzz/regressions/<target>/), then fuzzes each target for SECONDS from a corpus seeded with
# valid inputs (tests/fuzz/make_seeds.py and make_<name>_seeds.py) and grown across runs in
# build-fuzz/corpus/<target>/.
#
#   bash scripts/fuzz.sh            # CI: 30 s per target
#   bash scripts/fuzz.sh 600        # the long run: 10 minutes per target
#   bash scripts/fuzz.sh 60 image_fuzz tokenizer_fuzz
#
# A crash, leak, sanitizer report or timeout stops the run with a non-zero status; the input is
# saved as build-fuzz/crashes/<target>/crash-* and the line to reproduce it is printed. Each
# target's execution count ends up in build-fuzz/logs/<target>.log ("Done N runs").
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-30}
shift || true
BUILD_DIR=${TERN_FUZZ_BUILD_DIR:-build-fuzz}
JOBS=${TERN_JOBS:-$(nproc)}

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # -O1 -g: what libFuzzer's documentation recommends for fuzzing with sanitizers.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
    -DTERN_SANITIZE=address,undefined -DTERN_FUZZ=ON -DTERN_BUILD_TESTS=OFF >/dev/null
fi

mapfile -t ALL < <(ls tests/fuzz/*_fuzz.cpp 2>/dev/null | xargs -r -n1 basename | sed 's/\.cpp$//')
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
if ((${#TARGETS[@]} == 0)); then
  echo "fuzz: no fuzz targets in tests/fuzz/" >&2
  exit 0
fi
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}" -- --quiet

SEEDS="$BUILD_DIR/seeds"
rm -rf "$SEEDS"
/usr/bin/python3 tests/fuzz/make_seeds.py "$SEEDS"
# The parser owners' own seed scripts (tests/fuzz/make_<name>_seeds.py for <name>_fuzz) add theirs.
for t in "${TARGETS[@]}"; do
  gen="tests/fuzz/make_${t%_fuzz}_seeds.py"
  [ -f "$gen" ] && /usr/bin/python3 "$gen" "$SEEDS/$t/owner" >/dev/null
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$BUILD_DIR/logs"
status=0
for t in "${TARGETS[@]}"; do
  bin="$BUILD_DIR/tests/fuzz/$t"
  corpus="$BUILD_DIR/corpus/$t" crashes="$BUILD_DIR/crashes/$t" log="$BUILD_DIR/logs/$t.log"
  mkdir -p "$corpus" "$crashes" "$SEEDS/$t"
  # Known crashers of the past: each must now run clean.
  regressions=(tests/fuzz/regressions/"$t"/*)
  if [ -e "${regressions[0]}" ]; then
    if ! "$bin" "${regressions[@]}" >"$log.replay" 2>&1; then
      echo "fuzz: $t fails on a saved regression input:" >&2
      tail -n 40 "$log.replay" >&2
      status=1
      continue
    fi
  fi
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # -timeout: one input taking over 10 s is a hang (R in ROBUSTNESS.md); -rss_limit_mb: bounded
  # memory; -max_len: the parsers' interesting structure fits in 16 KiB.
  if "$bin" "$corpus" "$SEEDS/$t" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" \
      -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
      -artifact_prefix="$crashes/" >"$log" 2>&1; then
    runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -n1 || true)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n1 || true)
    echo "fuzz: $t: ${runs:-?} in ${SECONDS_PER_TARGET} s, $cov, corpus $(ls "$corpus" | wc -l) inputs"
  else
    echo "fuzz: $t FAILED (log: $log)" >&2
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 20 >&2 || true
    for c in "$crashes"/*; do
      [ -e "$c" ] && echo "  reproduce: $bin $c" >&2
    done
    status=1
  fi
done
exit $status
