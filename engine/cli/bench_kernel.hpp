#pragma once
// `tern bench --kernel gemm|gemm_unpacked`: times one kernel on given shapes with the active ISA
// (TERN_ISA caps it), measures the FMA peak of the same ISA and thread count in the same run, and
// times Eigen's GEMM on the same shapes as a baseline.
//
//   tern bench --kernel gemm [--shape MxNxK ...] [--threads N] [--iters N] [--json]
//
// Per shape, Tern and Eigen run alternately (so both see the same interference from the rest of
// the machine): GFLOP/s (2·M·N·K / time) of the fastest run, as the peak is the fastest of its
// runs, the fraction of peak, the median run's GFLOP/s, Eigen's GFLOP/s (single-threaded: Debian's
// Eigen is built without OpenMP; compiled for AVX2 + FMA and reported only where the CPU has
// them). --json prints one object per shape, one per line: kernel, isa, threads, M, N, K, iters,
// best_ms, median_ms, gflops (best), median_gflops, peak_gflops, fraction_of_peak (best),
// eigen_gflops (best), eigen_threads, speedup_vs_eigen (best over best).
#include <cstdint>
#include <functional>

#include "engine/cli/commands.hpp"

namespace tern::cli {

int bench_kernel(const Args& args);

// A callable that computes C = A·B with Eigen on its own random row-major M×K and K×N matrices.
// Compiled with AVX2 + FMA: call only where the CPU has them.
std::function<void()> eigen_gemm_runner(int64_t M, int64_t N, int64_t K);

}  // namespace tern::cli
