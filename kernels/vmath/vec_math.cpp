#include "kernels/vmath/vec_math.hpp"

#include "kernels/vmath/vec_math_config.hpp"

namespace tern::vmath {

const VecMathConfig& vec_math_config(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return vec_math_config_avx512();
    case Isa::avx2:
      return vec_math_config_avx2();
    case Isa::scalar:
      break;
  }
  return vec_math_config_scalar();
}

void exp(Isa isa, int64_t n, const float* x, float* y) {
  vec_math_config(isa).exp(n, x, y);
}
void erf(Isa isa, int64_t n, const float* x, float* y) {
  vec_math_config(isa).erf(n, x, y);
}

}  // namespace tern::vmath
