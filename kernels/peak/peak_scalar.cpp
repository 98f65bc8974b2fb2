#include "kernels/peak/peak.hpp"

namespace tern {

// 12 independent scalar multiply-add chains (the portable build has no FMA instruction; the
// compiler may still pack them into SSE registers, which is what scalar kernels get too).
int64_t fma_loop_scalar(int64_t iters, float* sink) {
  constexpr int kAcc = 12;
  float acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = 0.001f * float(i);
  const float m = 0.999999f, a = 1e-6f;
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i) acc[i] = acc[i] * m + a;
  float s = 0;
  for (int i = 0; i < kAcc; ++i) s += acc[i];
  *sink = s;
  return iters * kAcc * 2;
}

}  // namespace tern
