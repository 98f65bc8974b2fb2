#include <cmath>

#include "kernels/norm/layer_norm.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::norm::detail {

static inline float hsum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

void layer_norm_rows_avx2(int64_t rows, int64_t dim, const float* x, int64_t ldx,
                          const float* gamma, const float* beta, float eps, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    const float shift = xr[0];
    const __m256 vshift = _mm256_set1_ps(shift);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 q0 = _mm256_setzero_ps(), q1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= dim; c += 16) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + c), vshift);
      const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(xr + c + 8), vshift);
      s0 = _mm256_add_ps(s0, d0);
      s1 = _mm256_add_ps(s1, d1);
      q0 = _mm256_fmadd_ps(d0, d0, q0);
      q1 = _mm256_fmadd_ps(d1, d1, q1);
    }
    for (; c + 8 <= dim; c += 8) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + c), vshift);
      s0 = _mm256_add_ps(s0, d0);
      q0 = _mm256_fmadd_ps(d0, d0, q0);
    }
    float s = hsum(_mm256_add_ps(s0, s1)), ss = hsum(_mm256_add_ps(q0, q1));
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
    const __m256 vmean = _mm256_set1_ps(mean), vinv = _mm256_set1_ps(inv);
    c = 0;
    for (; c + 8 <= dim; c += 8) {
      const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), vmean), vinv);
      _mm256_storeu_ps(yr + c,
                       _mm256_fmadd_ps(t, _mm256_loadu_ps(gamma + c), _mm256_loadu_ps(beta + c)));
    }
    for (; c < dim; ++c) yr[c] = std::fma((xr[c] - mean) * inv, gamma[c], beta[c]);
  }
}

}  // namespace tern::norm::detail
