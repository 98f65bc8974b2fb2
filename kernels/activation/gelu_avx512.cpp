#include <cstring>

#include "kernels/activation/gelu.hpp"
#include "kernels/math/vec_math_avx512.hpp"

namespace tern {

void gelu_avx512(int64_t n, const float* x, float* y) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, vmath::avx512::gelu(_mm512_loadu_ps(x + i)));
  if (i < n) {
    alignas(64) float buf[16] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm512_store_ps(buf, vmath::avx512::gelu(_mm512_load_ps(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

}  // namespace tern
