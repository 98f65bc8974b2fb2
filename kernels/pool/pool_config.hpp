#pragma once
// The pooling family's variants (registers only; shapes and threads in pool.cpp), one config per
// ISA (pool_<isa>.cpp), chosen once by pool_config(isa).
//   max:  y[c] = max(src[0][c], ..., src[count-1][c]) for c < C, folded left to right as
//         v = v > s ? v : s (the semantics of maxps), count >= 1.
//   sum:  y[c] = ((x[0][c] + x[1][c]) + ...) over `rows` rows of stride ld (>= C), starting from 0.
// Every variant does the same per-channel sequence of operations, so all ISAs agree bit for bit.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::pool {

struct PoolConfig {
  Isa isa;
  void (*max)(const float* const* src, int64_t count, int64_t C, float* y);    // f32_max_c8__avx2
  void (*sum)(const float* x, int64_t rows, int64_t ld, int64_t C, float* y);  // f32_sum_c32__avx2
  const char* name;
};

const PoolConfig& pool_config(Isa isa);
const PoolConfig& pool_config_scalar();
const PoolConfig& pool_config_avx2();
const PoolConfig& pool_config_avx512();

}  // namespace tern::pool
