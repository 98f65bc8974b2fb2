#pragma once
// Array forms of the vector math functions, for kernels that want a whole buffer done and for the
// accuracy tests. Kernels that fuse exp / erf / GELU into their own loops instantiate the bodies
// of vec_math_impl.hpp instead (accuracy in vec_math_coeffs.hpp). The scalar level uses std::exp /
// std::erf. y may alias x. n >= 0; no alignment requirement; reads and writes exactly n elements.
// Variants per ISA: vec_math_config.hpp.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::vmath {

void exp(Isa isa, int64_t n, const float* x, float* y);
void erf(Isa isa, int64_t n, const float* x, float* y);

}  // namespace tern::vmath
