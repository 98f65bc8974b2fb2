#include "kernels/norm/layer_norm.hpp"

#include <cassert>
#include <cmath>

#include "kernels/norm/layer_norm_config.hpp"

namespace tern::norm {

const LayerNormConfig& layer_norm_config(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return layer_norm_config_avx512();
    case Isa::avx2:
      return layer_norm_config_avx2();
    case Isa::scalar:
      break;
  }
  return layer_norm_config_scalar();
}

void layer_norm(Isa isa, Parallel* par, int64_t rows, int64_t dim, const float* x, int64_t ldx,
                const float* gamma, const float* beta, float eps, float* y, int64_t ldy) {
  assert(rows >= 0 && dim >= 1 && ldx >= dim && ldy >= dim);
  assert(y == x ? ldy == ldx : true);
  if (rows <= 0) return;
  const LayerNormRowsFn fn = layer_norm_config(isa).rows;
  // Fixed blocks of rows: enough work per task to amortise the hand-off.
  const int64_t block = dim >= 512 ? 8 : 32;
  const int64_t tasks = (rows + block - 1) / block;
  parallel_for(par, tasks, [&](int64_t t) {
    const int64_t r0 = t * block;
    const int64_t n = rows - r0 < block ? rows - r0 : block;
    fn(n, dim, x + r0 * ldx, ldx, gamma, beta, eps, y + r0 * ldy, ldy);
  });
}

void layer_norm_reference(int64_t rows, int64_t dim, const float* x, int64_t ldx,
                          const float* gamma, const float* beta, float eps, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    double mean = 0;
    for (int64_t c = 0; c < dim; ++c) mean += xr[c];
    mean /= double(dim);
    double var = 0;
    for (int64_t c = 0; c < dim; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= double(dim);
    const double inv = 1.0 / std::sqrt(var + double(eps));
    float* yr = y + r * ldy;
    for (int64_t c = 0; c < dim; ++c)
      yr[c] = static_cast<float>((xr[c] - mean) * inv * gamma[c] + beta[c]);
  }
}

}  // namespace tern::norm
