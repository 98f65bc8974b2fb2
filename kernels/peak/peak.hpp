#pragma once
// The FMA peak of this machine, measured: a register-only loop of independent multiply-adds (no
// loads, no stores, enough accumulators to cover the FMA latency on every pipe), run on `threads`
// threads at once. Benchmarks report kernels as a fraction of it. Variants per ISA:
// peak_config.hpp.
#include "kernels/isa.hpp"

namespace tern::peak {

// GFLOP/s (1 FMA = 2 FLOP) of `threads` threads (>= 1) running the loop at once: the fastest of
// many runs of about 0.25 ms each (at least 10) for about `seconds` (up to 4x longer with several
// threads, see peak.cpp). Short runs, as kernels are timed: on a loaded shared machine a long run
// reads this process's share of the core.
double measure_fma_peak_gflops(Isa isa, int threads, double seconds = 0.4);

}  // namespace tern::peak
