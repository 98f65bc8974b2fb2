#include "kernels/math/vec_math_avx2.hpp"

#include <cstring>

#include "kernels/math/vec_math.hpp"

namespace tern::vmath {
namespace {

template <typename F>
void map_avx2(int64_t n, const float* x, float* y, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

}  // namespace

void exp_avx2(int64_t n, const float* x, float* y) {
  map_avx2(n, x, y, [](__m256 v) { return avx2::exp(v); });
}

void erf_avx2(int64_t n, const float* x, float* y) {
  map_avx2(n, x, y, [](__m256 v) { return avx2::erf(v); });
}

}  // namespace tern::vmath
