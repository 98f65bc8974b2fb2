#include "kernels/peak/peak.hpp"
#include "kernels/simd_x86.hpp"

namespace tern {

// 12 independent chains of 8-wide FMAs: 2 pipes × 4-5 cycles latency needs at least 10.
int64_t fma_loop_avx2(int64_t iters, float* sink) {
  constexpr int kAcc = 12;
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(0.001f * float(i));
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  }
  __m256 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm256_add_ps(s, acc[i]);
  *sink = _mm256_cvtss_f32(s);
  return iters * kAcc * 8 * 2;
}

}  // namespace tern
