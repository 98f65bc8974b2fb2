#include <cmath>
#include <limits>

#include "kernels/attention/attention.hpp"
#include "kernels/math/vec_math_avx2.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::attention::detail {

namespace {

constexpr int kMr = 4;  // rows per register tile: 4 x 16 columns = 8 accumulators

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lanes j0 + i < valid.
inline __m256 valid_mask(int64_t j0, int64_t valid) {
  const __m256 idx =
      _mm256_add_ps(_mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_ps(static_cast<float>(j0)));
  return _mm256_cmp_ps(idx, _mm256_set1_ps(static_cast<float>(valid)), _CMP_LT_OQ);
}

template <int R>
void gemm_rows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc, const float* c_scale) {
  for (int64_t j = 0; j < n; j += 16) {
    __m256 acc[R][2];
    for (int r = 0; r < R; ++r) {
      if (c_scale) {
        const __m256 sc = _mm256_set1_ps(c_scale[r]);
        acc[r][0] = _mm256_mul_ps(_mm256_loadu_ps(c + r * ldc + j), sc);
        acc[r][1] = _mm256_mul_ps(_mm256_loadu_ps(c + r * ldc + j + 8), sc);
      } else {
        acc[r][0] = _mm256_setzero_ps();
        acc[r][1] = _mm256_setzero_ps();
      }
    }
    for (int64_t i = 0; i < k; ++i) {
      const __m256 b0 = _mm256_loadu_ps(b + i * ldb + j);
      const __m256 b1 = _mm256_loadu_ps(b + i * ldb + j + 8);
      for (int r = 0; r < R; ++r) {
        const __m256 ar = _mm256_broadcast_ss(a + r * lda + i);
        acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      _mm256_storeu_ps(c + r * ldc + j, acc[r][0]);
      _mm256_storeu_ps(c + r * ldc + j + 8, acc[r][1]);
    }
  }
}

void gemm_avx2(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  int64_t r = 0;
  for (; r + kMr <= rows; r += kMr)
    gemm_rows<kMr>(n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc,
                   c_scale ? c_scale + r : nullptr);
  const float* cs = c_scale ? c_scale + r : nullptr;
  switch (rows - r) {
    case 1:
      gemm_rows<1>(n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc, cs);
      break;
    case 2:
      gemm_rows<2>(n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc, cs);
      break;
    case 3:
      gemm_rows<3>(n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc, cs);
      break;
    default:
      break;
  }
}

float softmax_row_avx2(float* s, int64_t n, int64_t valid, float scale, float* m, float* l) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 vmax = neg_inf;
  for (int64_t j = 0; j < valid; j += 8)
    vmax = _mm256_max_ps(vmax,
                         _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(s + j), valid_mask(j, valid)));
  const float m_old = *m, m_new = std::fmax(m_old, hmax(vmax) * scale);
  const __m256 vscale = _mm256_set1_ps(scale), vm = _mm256_set1_ps(m_new);
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j += 8) {
    __m256 e = vmath::avx2::exp(_mm256_fmsub_ps(_mm256_loadu_ps(s + j), vscale, vm));
    e = _mm256_and_ps(e, valid_mask(j, valid));
    vsum = _mm256_add_ps(vsum, e);
    _mm256_storeu_ps(s + j, e);
  }
  const float corr =
      m_old == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(m_old - m_new);
  *l = *l * corr + hsum(vsum);
  *m = m_new;
  return corr;
}

}  // namespace

const Ukernels kUkernelsAvx2 = {16, gemm_avx2, softmax_row_avx2};

}  // namespace tern::attention::detail
