#include <cmath>

#include "kernels/activation/gelu.hpp"

namespace tern {

void gelu_scalar(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)));
  }
}

}  // namespace tern
