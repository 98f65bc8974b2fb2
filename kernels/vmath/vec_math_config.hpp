#pragma once
// The vector math family's variants, one config per ISA (vec_math_<isa>.cpp), chosen once by
// vec_math_config(isa). Contract of every function: vec_math.hpp.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::vmath {

using UnaryFn = void (*)(int64_t n, const float* x, float* y);

struct VecMathConfig {
  Isa isa;
  UnaryFn exp;       // f32_exp_x8__avx2, ...
  UnaryFn erf;       // f32_erf_x8__avx2, ...
  const char* name;  // e.g. "f32_vmath_x8__avx2"
};

const VecMathConfig& vec_math_config(Isa isa);
const VecMathConfig& vec_math_config_scalar();
const VecMathConfig& vec_math_config_avx2();
const VecMathConfig& vec_math_config_avx512();

}  // namespace tern::vmath
