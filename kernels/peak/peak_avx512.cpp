#include "kernels/peak/peak.hpp"
#include "kernels/simd_x86.hpp"

namespace tern {

// 24 independent chains of 16-wide FMAs: covers two 512-bit pipes at up to 12 cycles of latency.
int64_t fma_loop_avx512(int64_t iters, float* sink) {
  constexpr int kAcc = 24;
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(0.001f * float(i));
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = _mm512_add_ps(s, acc[i]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  *sink = out[0];
  return iters * kAcc * 16 * 2;
}

}  // namespace tern
