#include <cmath>

#include "kernels/norm/layer_norm.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::norm::detail {

// SIMDe 0.7.4 has no _mm512_reduce_add_ps: fold to 256 bits, then 128.
static inline float hsum(__m512 v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  const __m256 h = _mm256_add_ps(lo, hi);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void layer_norm_rows_avx512(int64_t rows, int64_t dim, const float* x, int64_t ldx,
                            const float* gamma, const float* beta, float eps, float* y,
                            int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    const float shift = xr[0];
    const __m512 vshift = _mm512_set1_ps(shift);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= dim; c += 32) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(xr + c), vshift);
      const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(xr + c + 16), vshift);
      s0 = _mm512_add_ps(s0, d0);
      s1 = _mm512_add_ps(s1, d1);
      q0 = _mm512_fmadd_ps(d0, d0, q0);
      q1 = _mm512_fmadd_ps(d1, d1, q1);
    }
    for (; c + 16 <= dim; c += 16) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(xr + c), vshift);
      s0 = _mm512_add_ps(s0, d0);
      q0 = _mm512_fmadd_ps(d0, d0, q0);
    }
    float s = hsum(_mm512_add_ps(s0, s1)), ss = hsum(_mm512_add_ps(q0, q1));
    for (; c < dim; ++c) {
      const float d = xr[c] - shift;
      s += d;
      ss += d * d;
    }
    const float n = static_cast<float>(dim);
    const float dmean = s / n;
    const float var = std::fmax(ss / n - dmean * dmean, 0.f);
    const float mean = shift + dmean;
    const float inv = 1.f / std::sqrt(var + eps);
    const __m512 vmean = _mm512_set1_ps(mean), vinv = _mm512_set1_ps(inv);
    c = 0;
    for (; c + 16 <= dim; c += 16) {
      const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + c), vmean), vinv);
      _mm512_storeu_ps(yr + c,
                       _mm512_fmadd_ps(t, _mm512_loadu_ps(gamma + c), _mm512_loadu_ps(beta + c)));
    }
    for (; c < dim; ++c) yr[c] = std::fma((xr[c] - mean) * inv, gamma[c], beta[c]);
  }
}

}  // namespace tern::norm::detail
