#include <cmath>

#include "kernels/norm/layer_norm_config.hpp"

namespace tern::norm {
namespace {

void f32_layer_norm_rows__scalar(int64_t rows, int64_t dim, const float* x, int64_t ldx,
                                 const float* gamma, const float* beta, float eps, float* y,
                                 int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    const float shift = xr[0];
    float s = 0.f, ss = 0.f;
    for (int64_t c = 0; c < dim; ++c) {
      const float d = xr[c] - shift;
      s += d;
      ss += d * d;
    }
    const float n = static_cast<float>(dim);
    const float dmean = s / n;
    const float var = std::fmax(ss / n - dmean * dmean, 0.f);
    const float mean = shift + dmean;
    const float inv = 1.f / std::sqrt(var + eps);
    for (int64_t c = 0; c < dim; ++c) yr[c] = (xr[c] - mean) * inv * gamma[c] + beta[c];
  }
}

const LayerNormConfig kConfig = {Isa::scalar, f32_layer_norm_rows__scalar,
                                 "f32_layer_norm_rows__scalar"};

}  // namespace

const LayerNormConfig& layer_norm_config_scalar() {
  return kConfig;
}

}  // namespace tern::norm
