#include "kernels/math/vec_math.hpp"

namespace tern::vmath {

void exp(Isa isa, int64_t n, const float* x, float* y) {
  switch (isa) {
    case Isa::avx512: return exp_avx512(n, x, y);
    case Isa::avx2: return exp_avx2(n, x, y);
    case Isa::scalar: break;
  }
  exp_scalar(n, x, y);
}

void erf(Isa isa, int64_t n, const float* x, float* y) {
  switch (isa) {
    case Isa::avx512: return erf_avx512(n, x, y);
    case Isa::avx2: return erf_avx2(n, x, y);
    case Isa::scalar: break;
  }
  erf_scalar(n, x, y);
}

}  // namespace tern::vmath
