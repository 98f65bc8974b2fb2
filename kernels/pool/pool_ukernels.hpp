#pragma once
// Per-ISA microkernels of the pooling family (registers only; shapes and threads in pool.cpp).
//   max:  y[c] = max(src[0][c], ..., src[count-1][c]) for c < C, folded left to right as
//         v = v > s ? v : s (the semantics of maxps), count >= 1.
//   sum:  y[c] = ((x[0][c] + x[1][c]) + ...) over `rows` rows of stride ld (>= C), starting from 0.
#include <cstdint>

namespace tern::pool {

#define TERN_POOL_UKERNELS(isa)                                                         \
  void max_ukernel__##isa(const float* const* src, int64_t count, int64_t C, float* y); \
  void sum_ukernel__##isa(const float* x, int64_t rows, int64_t ld, int64_t C, float* y);

TERN_POOL_UKERNELS(scalar)
TERN_POOL_UKERNELS(avx2)
TERN_POOL_UKERNELS(avx512)
#undef TERN_POOL_UKERNELS

}  // namespace tern::pool
