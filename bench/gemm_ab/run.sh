#!/usr/bin/env bash
# A/B timing of GEMM revisions in one process (bench/gemm_ab/README.md).
#   bash bench/gemm_ab/run.sh [--isa avx2|avx512|scalar] [--threads N] [--rounds N] REV ... [-- MxNxK ...]
# REV: a git revision, or "." for the working tree. Each becomes a shared object built from that
# revision's kernels/gemm (Release flags, as CMakeLists.txt), loaded next to the others by
# compare.cpp, checked for agreement and timed alternately; GFLOP/s as a percentage of the FMA
# peak that build/tern_kernel_bench (or $TERN_KERNEL_BENCH) measures for the same ISA and threads.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/gemm_ab"
BENCH_BIN="${TERN_KERNEL_BENCH:-$ROOT/build/tern_kernel_bench}"
isa=avx2 threads=1 rounds=25 revs=() shapes=()
while (($#)); do
  case "$1" in
    --isa) isa="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; shapes=("$@"); break ;;
    *) revs+=("$1"); shift ;;
  esac
done
((${#revs[@]})) || { echo "run.sh: name at least one revision (or . for the working tree)" >&2; exit 2; }
[[ -x "$BENCH_BIN" ]] || {
  echo "run.sh: $BENCH_BIN not found: cmake --build build --target tern_kernel_bench" >&2; exit 2; }
case "$isa" in avx2|avx512|scalar) ;; *) echo "run.sh: --isa avx2|avx512|scalar" >&2; exit 2 ;; esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
CXX="${CXX:-g++}"
base=(-O3 -DNDEBUG -std=c++20 -fPIC -fvisibility=hidden)
avx2=(-mavx2 -mfma -mf16c)
avx512=(-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mavx2 -mfma -mf16c)
sos=()
for rev in "${revs[@]}"; do
  if [[ "$rev" == "." ]]; then
    src="$ROOT" name="worktree"
  else
    name="$(git -C "$ROOT" rev-parse --short "$rev")"
    src="$work/src-$name"
    mkdir -p "$src"
    git -C "$ROOT" archive "$rev" kernels engine | tar -x -C "$src"
  fi
  obj="$work/obj-$name"
  mkdir -p "$obj"
  inc=(-I"$src" -I"$src/engine/include")
  objs=()
  # The vector math lived in kernels/math before it became kernels/vmath: take whichever exists.
  shopt -s nullglob
  for f in "$src"/kernels/gemm/*.cpp "$src"/kernels/math/*.cpp "$src"/kernels/vmath/*.cpp \
           "$src"/engine/core/thread_pool.cpp "$HERE/variant.cpp"; do
    flags=()
    [[ "$f" == *_avx2.cpp ]] && flags=("${avx2[@]}")
    [[ "$f" == *_avx512.cpp ]] && flags=("${avx512[@]}")
    o="$obj/$(basename "$f" .cpp).o"
    "$CXX" "${base[@]}" "${inc[@]}" "${flags[@]}" -c "$f" -o "$o"
    objs+=("$o")
  done
  "$CXX" -shared -o "$work/$name.so" "${objs[@]}" -lpthread
  sos+=("$work/$name.so")
done
"$CXX" -O2 -std=c++20 "$HERE/compare.cpp" -o "$work/compare" -ldl
peak="$(TERN_ISA="$isa" "$BENCH_BIN" gemm --shape 64x64x64 --iters 1 --threads "$threads" --json |
        sed -n 's/.*"peak_gflops":\([0-9.e+]*\).*/\1/p')"
echo "isa $isa, threads $threads, FMA peak $peak GFLOP/s (fastest runs, $rounds alternating rounds)"
TERN_AB_ISA="$isa" TERN_AB_THREADS="$threads" "$work/compare" --peak "$peak" --rounds "$rounds" \
  "${sos[@]}" "${shapes[@]}"
