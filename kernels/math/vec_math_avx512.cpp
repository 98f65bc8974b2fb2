#include "kernels/math/vec_math_avx512.hpp"

#include <cstring>

#include "kernels/math/vec_math.hpp"

namespace tern::vmath {
namespace {

template <typename F>
void map_avx512(int64_t n, const float* x, float* y, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    alignas(64) float buf[16] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm512_store_ps(buf, f(_mm512_load_ps(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

}  // namespace

void exp_avx512(int64_t n, const float* x, float* y) {
  map_avx512(n, x, y, [](__m512 v) { return avx512::exp(v); });
}

void erf_avx512(int64_t n, const float* x, float* y) {
  map_avx512(n, x, y, [](__m512 v) { return avx512::erf(v); });
}

}  // namespace tern::vmath
