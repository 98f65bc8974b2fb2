#include <cmath>

#include "kernels/vmath/vec_math_config.hpp"

namespace tern::vmath {
namespace {

void f32_exp__scalar(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void f32_erf__scalar(int64_t n, const float* x, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
}

const VecMathConfig kConfig = {Isa::scalar, f32_exp__scalar, f32_erf__scalar, "f32_vmath__scalar"};

}  // namespace

const VecMathConfig& vec_math_config_scalar() {
  return kConfig;
}

}  // namespace tern::vmath
