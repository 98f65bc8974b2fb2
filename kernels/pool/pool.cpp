#include "kernels/pool/pool.hpp"

#include <algorithm>
#include <cassert>

#include "kernels/pool/pool_config.hpp"

namespace tern::pool {

const PoolConfig& pool_config(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return pool_config_avx512();
    case Isa::avx2:
      return pool_config_avx2();
    case Isa::scalar:
      break;
  }
  return pool_config_scalar();
}

namespace {

constexpr int64_t kAvgPoolChannelBlock = 256;
constexpr int64_t kMaxTaps = 64;

}  // namespace

void max_pool2d_nhwc(Isa isa, Parallel* par, const PoolParams& p, int64_t N, int64_t H, int64_t W,
                     int64_t C, const float* x, float* y) {
  const int64_t OH = pool_out_size(H, p), OW = pool_out_size(W, p);
  assert(p.kernel >= 1 && p.kernel * p.kernel <= kMaxTaps && p.pad < p.kernel && OH > 0 && OW > 0);
  const PoolConfig& uk = pool_config(isa);
  parallel_for(par, N * OH, [&](int64_t noy) {
    const int64_t n = noy / OH, oy = noy % OH;
    const int64_t y0 = std::max<int64_t>(0, oy * p.stride - p.pad);
    const int64_t y1 = std::min(H, oy * p.stride - p.pad + p.kernel);
    const float* taps[kMaxTaps];
    for (int64_t ox = 0; ox < OW; ++ox) {
      const int64_t x0 = std::max<int64_t>(0, ox * p.stride - p.pad);
      const int64_t x1 = std::min(W, ox * p.stride - p.pad + p.kernel);
      int64_t count = 0;
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) taps[count++] = x + ((n * H + iy) * W + ix) * C;
      uk.max(taps, count, C, y + (noy * OW + ox) * C);
    }
  });
}

void global_avg_pool_nhwc(Isa isa, Parallel* par, int64_t N, int64_t HW, int64_t C, const float* x,
                          float* y) {
  assert(HW > 0);
  const PoolConfig& uk = pool_config(isa);
  const int64_t blocks = (C + kAvgPoolChannelBlock - 1) / kAvgPoolChannelBlock;
  parallel_for_2d(par, N, blocks, [&](int64_t n, int64_t b) {
    const int64_t c0 = b * kAvgPoolChannelBlock, cb = std::min(kAvgPoolChannelBlock, C - c0);
    float* out = y + n * C + c0;
    uk.sum(x + n * HW * C + c0, HW, C, cb, out);
    for (int64_t c = 0; c < cb; ++c) out[c] /= static_cast<float>(HW);
  });
}

void max_pool2d_reference_nchw(const PoolParams& p, int64_t N, int64_t C, int64_t H, int64_t W,
                               const float* x, float* y) {
  const int64_t OH = pool_out_size(H, p), OW = pool_out_size(W, p);
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        float best = -__builtin_inff();
        for (int64_t ky = 0; ky < p.kernel; ++ky)
          for (int64_t kx = 0; kx < p.kernel; ++kx) {
            const int64_t iy = oy * p.stride - p.pad + ky, ix = ox * p.stride - p.pad + kx;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
              best = std::max(best, x[(nc * H + iy) * W + ix]);
          }
        y[(nc * OH + oy) * OW + ox] = best;
      }
}

void global_avg_pool_reference_nchw(int64_t N, int64_t C, int64_t HW, const float* x, float* y) {
  for (int64_t nc = 0; nc < N * C; ++nc) {
    double s = 0;
    for (int64_t i = 0; i < HW; ++i) s += x[nc * HW + i];
    y[nc] = static_cast<float>(s / HW);
  }
}

}  // namespace tern::pool
