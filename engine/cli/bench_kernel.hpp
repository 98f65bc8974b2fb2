#pragma once
// `tern bench --kernel gemm|gemm_unpacked`: times one kernel on given shapes with the active ISA
// (TERN_ISA caps it), measures the FMA peak of the same ISA and thread count in the same run, and
// times Eigen's GEMM on the same shapes as a baseline.
//
//   tern bench --kernel gemm [--shape MxNxK ...] [--threads N] [--iters N] [--json]
//
// Per shape: median time over the iterations, GFLOP/s (2·M·N·K / time), fraction of peak, Eigen's
// GFLOP/s (single-threaded: Debian's Eigen is built without OpenMP; compiled for AVX2 + FMA and
// reported only where the CPU has them). --json prints one object per shape, one per line: kernel,
// isa, threads, M, N, K, iters, median_ms, gflops, peak_gflops, fraction_of_peak, eigen_gflops,
// eigen_threads, speedup_vs_eigen.
#include "engine/cli/commands.hpp"

namespace tern::cli {

int bench_kernel(const Args& args);

// Median seconds of `iters` timed runs (after one warm-up) of C = A·B with Eigen on random
// row-major M×K and K×N matrices. Compiled with AVX2 + FMA: call only where the CPU has them.
double eigen_gemm_median_seconds(int64_t M, int64_t N, int64_t K, int iters);

}  // namespace tern::cli
