#pragma once
// Array forms of the vector math functions, one per ISA, for kernels that want a whole buffer done
// and for the accuracy tests. Kernels that fuse exp / erf / GELU into their own loops include the
// inline per-ISA headers instead (vec_math_avx2.hpp, vec_math_avx512.hpp; accuracy in
// vec_math_coeffs.hpp). The scalar level uses std::exp / std::erf.
// y may alias x. n >= 0; no alignment requirement; reads and writes exactly n elements.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::vmath {

void exp(Isa isa, int64_t n, const float* x, float* y);
void erf(Isa isa, int64_t n, const float* x, float* y);

void exp_scalar(int64_t n, const float* x, float* y);
void erf_scalar(int64_t n, const float* x, float* y);
void exp_avx2(int64_t n, const float* x, float* y);
void erf_avx2(int64_t n, const float* x, float* y);
void exp_avx512(int64_t n, const float* x, float* y);
void erf_avx512(int64_t n, const float* x, float* y);

}  // namespace tern::vmath
