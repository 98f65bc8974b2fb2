#include <cmath>
#include <limits>

#include "kernels/attention/attention.hpp"
#include "kernels/math/vec_math_avx512.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::attention::detail {

namespace {

constexpr int kMr = 8;  // rows per register tile: 8 x 32 columns = 16 accumulators

// SIMDe 0.7.4 lacks _mm512_reduce_*: fold to 256 bits first.
inline __m256 upper256(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

inline float hmax(__m512 v) {
  const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), upper256(v));
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline float hsum(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), upper256(v));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lanes j0 + i < valid.
inline __mmask16 valid_mask(int64_t j0, int64_t valid) {
  const int64_t left = valid - j0;
  if (left >= 16) return static_cast<__mmask16>(0xFFFF);
  if (left <= 0) return 0;
  return static_cast<__mmask16>((1u << left) - 1u);
}

template <int R>
void gemm_rows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc, const float* c_scale) {
  for (int64_t j = 0; j < n; j += 32) {
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) {
      if (c_scale) {
        const __m512 sc = _mm512_set1_ps(c_scale[r]);
        acc[r][0] = _mm512_mul_ps(_mm512_loadu_ps(c + r * ldc + j), sc);
        acc[r][1] = _mm512_mul_ps(_mm512_loadu_ps(c + r * ldc + j + 16), sc);
      } else {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
      }
    }
    for (int64_t i = 0; i < k; ++i) {
      const __m512 b0 = _mm512_loadu_ps(b + i * ldb + j);
      const __m512 b1 = _mm512_loadu_ps(b + i * ldb + j + 16);
      for (int r = 0; r < R; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r * lda + i]);
        acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_ps(c + r * ldc + j, acc[r][0]);
      _mm512_storeu_ps(c + r * ldc + j + 16, acc[r][1]);
    }
  }
}

template <int R>
void gemm_tail(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  if constexpr (R > 0) {
    if (rows == R) return gemm_rows<R>(n, k, a, lda, b, ldb, c, ldc, c_scale);
    gemm_tail<R - 1>(rows, n, k, a, lda, b, ldb, c, ldc, c_scale);
  }
}

void gemm_avx512(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                 int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  int64_t r = 0;
  for (; r + kMr <= rows; r += kMr)
    gemm_rows<kMr>(n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc,
                   c_scale ? c_scale + r : nullptr);
  gemm_tail<kMr - 1>(rows - r, n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc,
                     c_scale ? c_scale + r : nullptr);
}

float softmax_row_avx512(float* s, int64_t n, int64_t valid, float scale, float* m, float* l) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 vmax = neg_inf;
  for (int64_t j = 0; j < valid; j += 16)
    vmax = _mm512_max_ps(vmax,
                         _mm512_mask_mov_ps(neg_inf, valid_mask(j, valid), _mm512_loadu_ps(s + j)));
  const float m_old = *m, m_new = std::fmax(m_old, hmax(vmax) * scale);
  const __m512 vscale = _mm512_set1_ps(scale), vm = _mm512_set1_ps(m_new);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __m512 e = _mm512_maskz_mov_ps(
        valid_mask(j, valid),
        vmath::avx512::exp(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vm)));
    vsum = _mm512_add_ps(vsum, e);
    _mm512_storeu_ps(s + j, e);
  }
  const float corr =
      m_old == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(m_old - m_new);
  *l = *l * corr + hsum(vsum);
  *m = m_new;
  return corr;
}

}  // namespace

const Ukernels kUkernelsAvx512 = {32, gemm_avx512, softmax_row_avx512};

}  // namespace tern::attention::detail
