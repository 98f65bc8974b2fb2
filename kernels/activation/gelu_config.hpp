#pragma once
// The GELU family's variants, one config per ISA (gelu_<isa>.cpp), chosen once by gelu_config(isa).
// Contract: gelu.hpp.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::activation {

struct GeluConfig {
  Isa isa;
  void (*gelu)(int64_t n, const float* x, float* y);  // f32_gelu_x8__avx2, ...
  const char* name;
};

const GeluConfig& gelu_config(Isa isa);
const GeluConfig& gelu_config_scalar();
const GeluConfig& gelu_config_avx2();
const GeluConfig& gelu_config_avx512();

}  // namespace tern::activation
