#pragma once
// Elementwise exact GELU, y = 0.5·x·(1 + erf(x/√2)), for places where it is not fused into a GEMM
// epilogue. y may alias x; n >= 0; no alignment requirement; reads and writes exactly n elements.
// Vector levels: absolute error < 1e-6 against the exact function for every finite x (see
// kernels/vmath/vec_math_coeffs.hpp); gelu(+inf) = +inf, gelu(-inf) = NaN (as PyTorch), NaN -> NaN.
// The scalar level is the reference: std::erf in double. Variants per ISA: gelu_config.hpp.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::activation {

void gelu(Isa isa, int64_t n, const float* x, float* y);

}  // namespace tern::activation
