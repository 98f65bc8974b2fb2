#include <cmath>

#include "kernels/activation/gelu_config.hpp"

namespace tern::activation {
namespace {

void f32_gelu__scalar(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = x[i];
    y[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)));
  }
}

const GeluConfig kConfig = {Isa::scalar, f32_gelu__scalar, "f32_gelu__scalar"};

}  // namespace

const GeluConfig& gelu_config_scalar() {
  return kConfig;
}

}  // namespace tern::activation
