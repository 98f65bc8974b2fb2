#include "kernels/norm/layer_norm_config.hpp"
#include "kernels/norm/layer_norm_impl.hpp"
#include "kernels/simd/vec_avx2.hpp"

namespace tern::norm {
namespace {

void f32_layer_norm_rows__avx2(int64_t rows, int64_t dim, const float* x, int64_t ldx,
                               const float* gamma, const float* beta, float eps, float* y,
                               int64_t ldy) {
  impl::layer_norm_rows<simd::F32x8>(rows, dim, x, ldx, gamma, beta, eps, y, ldy);
}

const LayerNormConfig kConfig = {Isa::avx2, f32_layer_norm_rows__avx2, "f32_layer_norm_rows__avx2"};

}  // namespace

const LayerNormConfig& layer_norm_config_avx2() {
  return kConfig;
}

}  // namespace tern::norm
