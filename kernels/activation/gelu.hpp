#pragma once
// Elementwise exact GELU, y = 0.5·x·(1 + erf(x/√2)), for places where it is not fused into a GEMM
// epilogue. y may alias x; n >= 0; no alignment requirement; reads and writes exactly n elements.
// Vector levels: absolute error < 1e-6 against the exact function for every finite x (see
// kernels/math/vec_math_coeffs.hpp); gelu(+inf) = +inf, gelu(-inf) = NaN (as PyTorch), NaN -> NaN.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern {

void gelu(Isa isa, int64_t n, const float* x, float* y);

void gelu_scalar(int64_t n, const float* x, float* y);  // reference: std::erf in double
void gelu_avx2(int64_t n, const float* x, float* y);
void gelu_avx512(int64_t n, const float* x, float* y);

}  // namespace tern
