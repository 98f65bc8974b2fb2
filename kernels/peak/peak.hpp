#pragma once
// The FMA peak of this machine, measured: a register-only loop of independent multiply-adds (no
// loads, no stores, enough accumulators to cover the FMA latency on every pipe), run on `threads`
// threads at once. Benchmarks report kernels as a fraction of it.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern {

// GFLOP/s (1 FMA = 2 FLOP) of `threads` threads (>= 1) running the loop: the fastest of 10 runs
// that take about `seconds` together.
double measure_fma_peak_gflops(Isa isa, int threads, double seconds = 0.4);

// One thread's loop: `iters` iterations, returns the FLOPs it did. sink receives a value derived
// from the accumulators so the loop cannot be optimised away.
int64_t fma_loop_scalar(int64_t iters, float* sink);
int64_t fma_loop_avx2(int64_t iters, float* sink);
int64_t fma_loop_avx512(int64_t iters, float* sink);

}  // namespace tern
