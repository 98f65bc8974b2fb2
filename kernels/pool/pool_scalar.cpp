#include "kernels/pool/pool_config.hpp"

namespace tern::pool {
namespace {

void f32_max__scalar(const float* const* src, int64_t count, int64_t C, float* y) {
  for (int64_t c = 0; c < C; ++c) {
    float v = src[0][c];
    for (int64_t i = 1; i < count; ++i) v = v > src[i][c] ? v : src[i][c];
    y[c] = v;
  }
}

void f32_sum__scalar(const float* x, int64_t rows, int64_t ld, int64_t C, float* y) {
  for (int64_t c = 0; c < C; ++c) y[c] = 0.f;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < C; ++c) y[c] += x[r * ld + c];
}

const PoolConfig kConfig = {Isa::scalar, f32_max__scalar, f32_sum__scalar, "f32_pool__scalar"};

}  // namespace

const PoolConfig& pool_config_scalar() {
  return kConfig;
}

}  // namespace tern::pool
