#include "kernels/activation/gelu.hpp"

namespace tern {

void gelu(Isa isa, int64_t n, const float* x, float* y) {
  switch (isa) {
    case Isa::avx512: return gelu_avx512(n, x, y);
    case Isa::avx2: return gelu_avx2(n, x, y);
    case Isa::scalar: break;
  }
  gelu_scalar(n, x, y);
}

}  // namespace tern
