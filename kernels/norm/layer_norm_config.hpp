#pragma once
// The LayerNorm family's variants, one config per ISA (layer_norm_<isa>.cpp), chosen once by
// layer_norm_config(isa). rows: the operator of layer_norm.hpp on `rows` rows, serially (the
// operator cuts rows into fixed blocks, one task each).
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::norm {

using LayerNormRowsFn = void (*)(int64_t rows, int64_t dim, const float* x, int64_t ldx,
                                 const float* gamma, const float* beta, float eps, float* y,
                                 int64_t ldy);

struct LayerNormConfig {
  Isa isa;
  LayerNormRowsFn rows;  // f32_layer_norm_rows__avx2, ...
  const char* name;
};

const LayerNormConfig& layer_norm_config(Isa isa);
const LayerNormConfig& layer_norm_config_scalar();
const LayerNormConfig& layer_norm_config_avx2();
const LayerNormConfig& layer_norm_config_avx512();

}  // namespace tern::norm
