#include <cmath>
#include <limits>

#include "kernels/attention/attention_config.hpp"

namespace tern::attention {
namespace {

void f32_attention_gemm_1x1__scalar(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda,
                                    const float* b, int64_t ldb, float* c, int64_t ldc,
                                    const float* c_scale) {
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    if (c_scale) {
      for (int64_t j = 0; j < n; ++j) cr[j] *= c_scale[r];
    } else {
      for (int64_t j = 0; j < n; ++j) cr[j] = 0.f;
    }
    for (int64_t i = 0; i < k; ++i) {
      const float ai = a[r * lda + i];
      const float* bi = b + i * ldb;
      for (int64_t j = 0; j < n; ++j) cr[j] += ai * bi[j];
    }
  }
}

float f32_softmax_row__scalar(float* s, int64_t n, int64_t valid, float scale, float* m, float* l) {
  float mx = s[0];
  for (int64_t j = 1; j < valid; ++j) mx = std::fmax(mx, s[j]);
  const float m_old = *m, m_new = std::fmax(m_old, mx * scale);
  float sum = 0.f;
  for (int64_t j = 0; j < valid; ++j) sum += (s[j] = std::exp(s[j] * scale - m_new));
  for (int64_t j = valid; j < n; ++j) s[j] = 0.f;
  const float corr =
      m_old == -std::numeric_limits<float>::infinity() ? 0.f : std::exp(m_old - m_new);
  *l = *l * corr + sum;
  *m = m_new;
  return corr;
}

void f32_transpose__scalar(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst,
                           int64_t ldd) {
  for (int64_t d = 0; d < cols; ++d)
    for (int64_t j = 0; j < rows; ++j) dst[d * ldd + j] = src[j * lds + d];
}

// key tile 128: as AVX2
const AttentionConfig kConfig = {Isa::scalar,
                                 1,
                                 128,
                                 f32_attention_gemm_1x1__scalar,
                                 f32_softmax_row__scalar,
                                 f32_transpose__scalar,
                                 "f32_attention_1x1__scalar"};

}  // namespace

const AttentionConfig& attention_config_scalar() {
  return kConfig;
}

}  // namespace tern::attention
