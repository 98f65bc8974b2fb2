#include "kernels/pool/pool_ukernels.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::pool {

void max_ukernel__avx2(const float* const* src, int64_t count, int64_t C, float* y) {
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) {
    __m256 v = _mm256_loadu_ps(src[0] + c);
    for (int64_t i = 1; i < count; ++i) v = _mm256_max_ps(v, _mm256_loadu_ps(src[i] + c));
    _mm256_storeu_ps(y + c, v);
  }
  for (; c < C; ++c) {
    float v = src[0][c];
    for (int64_t i = 1; i < count; ++i) v = v > src[i][c] ? v : src[i][c];
    y[c] = v;
  }
}

void sum_ukernel__avx2(const float* x, int64_t rows, int64_t ld, int64_t C, float* y) {
  int64_t c = 0;
  for (; c + 32 <= C; c += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = x + r * ld + c;
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + 8));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + 16));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + 24));
    }
    _mm256_storeu_ps(y + c, a0);
    _mm256_storeu_ps(y + c + 8, a1);
    _mm256_storeu_ps(y + c + 16, a2);
    _mm256_storeu_ps(y + c + 24, a3);
  }
  for (; c + 8 <= C; c += 8) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; ++r) a = _mm256_add_ps(a, _mm256_loadu_ps(x + r * ld + c));
    _mm256_storeu_ps(y + c, a);
  }
  for (; c < C; ++c) {
    float a = 0.f;
    for (int64_t r = 0; r < rows; ++r) a += x[r * ld + c];
    y[c] = a;
  }
}

}  // namespace tern::pool
