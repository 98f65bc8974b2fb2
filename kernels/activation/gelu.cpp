#include "kernels/activation/gelu.hpp"

#include "kernels/activation/gelu_config.hpp"

namespace tern::activation {

const GeluConfig& gelu_config(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return gelu_config_avx512();
    case Isa::avx2:
      return gelu_config_avx2();
    case Isa::scalar:
      break;
  }
  return gelu_config_scalar();
}

void gelu(Isa isa, int64_t n, const float* x, float* y) {
  gelu_config(isa).gelu(n, x, y);
}

}  // namespace tern::activation
