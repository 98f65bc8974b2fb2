#pragma once
// The vector attention microkernels, written once over a vector-traits type V
// (kernels/simd/vec_*.hpp) and instantiated in attention_avx2.cpp and attention_avx512.cpp.
// Contract: attention_config.hpp. The GEMM's register tile is kMr rows × 2 vectors; the softmax
// row takes one vector at a time. Internal linkage: one copy per translation unit.
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/vmath/vec_math_impl.hpp"

namespace tern::attention::impl {
namespace {

template <typename V, int R>
void gemm_rows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
               float* c, int64_t ldc, const float* c_scale) {
  constexpr int W = V::width;
  for (int64_t j = 0; j < n; j += 2 * W) {
    typename V::V acc[R][2];
    for (int r = 0; r < R; ++r) {
      if (c_scale) {
        const auto sc = V::set1(c_scale[r]);
        acc[r][0] = V::mul(V::load(c + r * ldc + j), sc);
        acc[r][1] = V::mul(V::load(c + r * ldc + j + W), sc);
      } else {
        acc[r][0] = V::zero();
        acc[r][1] = V::zero();
      }
    }
    for (int64_t i = 0; i < k; ++i) {
      const auto b0 = V::load(b + i * ldb + j);
      const auto b1 = V::load(b + i * ldb + j + W);
      for (int r = 0; r < R; ++r) {
        const auto ar = V::set1(a[r * lda + i]);
        acc[r][0] = V::fmadd(ar, b0, acc[r][0]);
        acc[r][1] = V::fmadd(ar, b1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      V::store(c + r * ldc + j, acc[r][0]);
      V::store(c + r * ldc + j + W, acc[r][1]);
    }
  }
}

// The last rows (fewer than a full tile) as one tile of exactly that height.
template <typename V, int R>
void gemm_tail(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  if constexpr (R > 0) {
    if (rows == R) return gemm_rows<V, R>(n, k, a, lda, b, ldb, c, ldc, c_scale);
    gemm_tail<V, R - 1>(rows, n, k, a, lda, b, ldb, c, ldc, c_scale);
  }
}

template <typename V, int kMr>
void gemm(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
          int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  int64_t r = 0;
  for (; r + kMr <= rows; r += kMr)
    gemm_rows<V, kMr>(n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc,
                      c_scale ? c_scale + r : nullptr);
  gemm_tail<V, kMr - 1>(rows - r, n, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc,
                        c_scale ? c_scale + r : nullptr);
}

template <typename V>
float softmax_row(float* s, int64_t n, int64_t valid, float scale, float* m, float* l) {
  constexpr int W = V::width;
  const auto neg_inf = V::set1(-std::numeric_limits<float>::infinity());
  auto vmax = neg_inf;
  for (int64_t j = 0; j < valid; j += W)
    vmax = V::max(vmax, V::blend(V::first_n(j, valid), neg_inf, V::load(s + j)));
  const float m_old = *m, m_new = std::fmax(m_old, V::reduce_max(vmax) * scale);
  const auto vscale = V::set1(scale), vm = V::set1(m_new);
  auto vsum = V::zero();
  for (int64_t j = 0; j < n; j += W) {
    const auto e = V::zero_unless(V::first_n(j, valid),
                                  vmath::impl::exp<V>(V::fmsub(V::load(s + j), vscale, vm)));
    vsum = V::add(vsum, e);
    V::store(s + j, e);
  }
  const float corr =
      m_old == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(m_old - m_new);
  *l = *l * corr + V::reduce_add(vsum);
  *m = m_new;
  return corr;
}

}  // namespace
}  // namespace tern::attention::impl
