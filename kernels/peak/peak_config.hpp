#pragma once
// The FMA-peak family's variants, one config per ISA (peak_<isa>.cpp), chosen once by
// peak_config(isa).
//   fma_loop: one thread's loop, `iters` iterations; returns the FLOPs it did. sink receives a
//             value derived from the accumulators so the loop cannot be optimised away.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::peak {

struct PeakConfig {
  Isa isa;
  int64_t (*fma_loop)(int64_t iters, float* sink);  // f32_fma_loop_12x8__avx2, ...
  const char* name;
};

const PeakConfig& peak_config(Isa isa);
const PeakConfig& peak_config_scalar();
const PeakConfig& peak_config_avx2();
const PeakConfig& peak_config_avx512();

}  // namespace tern::peak
