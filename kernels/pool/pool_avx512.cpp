#include "kernels/pool/pool_ukernels.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::pool {

void max_ukernel__avx512(const float* const* src, int64_t count, int64_t C, float* y) {
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    __m512 v = _mm512_loadu_ps(src[0] + c);
    for (int64_t i = 1; i < count; ++i) v = _mm512_max_ps(v, _mm512_loadu_ps(src[i] + c));
    _mm512_storeu_ps(y + c, v);
  }
  for (; c < C; ++c) {
    float v = src[0][c];
    for (int64_t i = 1; i < count; ++i) v = v > src[i][c] ? v : src[i][c];
    y[c] = v;
  }
}

void sum_ukernel__avx512(const float* x, int64_t rows, int64_t ld, int64_t C, float* y) {
  int64_t c = 0;
  for (; c + 64 <= C; c += 64) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = x + r * ld + c;
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + 32));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + 48));
    }
    _mm512_storeu_ps(y + c, a0);
    _mm512_storeu_ps(y + c + 16, a1);
    _mm512_storeu_ps(y + c + 32, a2);
    _mm512_storeu_ps(y + c + 48, a3);
  }
  for (; c + 16 <= C; c += 16) {
    __m512 a = _mm512_setzero_ps();
    for (int64_t r = 0; r < rows; ++r) a = _mm512_add_ps(a, _mm512_loadu_ps(x + r * ld + c));
    _mm512_storeu_ps(y + c, a);
  }
  for (; c < C; ++c) {
    float a = 0.f;
    for (int64_t r = 0; r < rows; ++r) a += x[r * ld + c];
    y[c] = a;
  }
}

}  // namespace tern::pool
