#include "kernels/conv/conv.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace tern::conv {

Conv2d Conv2d::pack(Isa isa, const ConvParams& p, const float* w, const float* bias) {
  assert(p.in_channels > 0 && p.out_channels > 0 && p.kernel_h > 0 && p.kernel_w > 0);
  assert(p.stride > 0 && p.pad >= 0);
  Conv2d conv;
  conv.p_ = p;
  conv.isa_ = isa;
  const int64_t OC = p.out_channels, C = p.in_channels, KH = p.kernel_h, KW = p.kernel_w;
  const int64_t K = conv.k();
  // [OC, C, KH, KW] -> [OC, KH, KW, C]: the im2col order of K.
  std::vector<float> reordered(static_cast<size_t>(OC * K));
  for (int64_t o = 0; o < OC; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ky = 0; ky < KH; ++ky)
        for (int64_t kx = 0; kx < KW; ++kx)
          reordered[o * K + (ky * KW + kx) * C + c] = w[((o * C + c) * KH + ky) * KW + kx];
  for (int64_t n0 = 0; n0 < OC; n0 += kBlockN) {
    const int64_t nb = std::min(kBlockN, OC - n0);
    conv.blocks_.push_back(
        gemm::PackedB::pack(isa, reordered.data() + n0 * K, K, nb, K, /*b_is_nk=*/true));
  }
  conv.bias_.assign(static_cast<size_t>(OC), 0.f);
  if (bias != nullptr) std::copy(bias, bias + OC, conv.bias_.begin());
  return conv;
}

void im2col_nhwc(const ConvParams& p, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x,
                 int64_t m0, int64_t rows, float* a) {
  const int64_t C = p.in_channels, KH = p.kernel_h, KW = p.kernel_w;
  const int64_t K = KH * KW * C;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t m = m0 + r;
    const int64_t n = m / (OH * OW), oy = (m / OW) % OH, ox = m % OW;
    float* dst = a + r * K;
    const int64_t ix0 = ox * p.stride - p.pad;
    // Taps kx in [kx_lo, kx_hi) fall inside the image; they are one contiguous run in NHWC.
    const int64_t kx_lo = std::max<int64_t>(0, -ix0), kx_hi = std::min(KW, W - ix0);
    for (int64_t ky = 0; ky < KH; ++ky) {
      float* d = dst + ky * KW * C;
      const int64_t iy = oy * p.stride - p.pad + ky;
      if (iy < 0 || iy >= H || kx_lo >= kx_hi) {
        std::memset(d, 0, sizeof(float) * KW * C);
        continue;
      }
      if (kx_lo > 0) std::memset(d, 0, sizeof(float) * kx_lo * C);
      std::memcpy(d + kx_lo * C, x + ((n * H + iy) * W + ix0 + kx_lo) * C,
                  sizeof(float) * (kx_hi - kx_lo) * C);
      if (kx_hi < KW) std::memset(d + kx_hi * C, 0, sizeof(float) * (KW - kx_hi) * C);
    }
  }
}

// Rows of A per task: the tile (rows × K floats) stays within ~256 KiB of L2, and big enough
// layers still give a few tasks per thread; a multiple of the GEMM's row panel. Depends on the
// shape only.
static int64_t tile_rows(Isa isa, int64_t M, int64_t K, int64_t blocks) {
  const int64_t mr = gemm::rows_per_panel(isa), min_rows = 3 * mr;
  auto panels = [&](int64_t r) { return std::max(min_rows, r / mr * mr); };
  int64_t rows = panels(std::clamp<int64_t>((64 * 1024) / K, min_rows, 256));
  while (rows > min_rows && ((M + rows - 1) / rows) * blocks < 8) rows = panels(rows / 2);
  return rows;
}

void Conv2d::run(Parallel* par, int64_t N, int64_t H, int64_t W, const float* x, float* y,
                 const float* residual, bool relu) const {
  const int64_t OH = conv_out_size(H, p_.kernel_h, p_.stride, p_.pad);
  const int64_t OW = conv_out_size(W, p_.kernel_w, p_.stride, p_.pad);
  assert(N > 0 && OH > 0 && OW > 0);
  const int64_t M = N * OH * OW, K = k(), OC = p_.out_channels;
  const bool direct = p_.kernel_h == 1 && p_.kernel_w == 1 && p_.stride == 1 && p_.pad == 0;
  const int64_t blocks = static_cast<int64_t>(blocks_.size());
  const int64_t rows = tile_rows(isa_, M, K, blocks);
  const int64_t tiles = (M + rows - 1) / rows;
  parallel_for_2d(par, tiles, blocks, [&](int64_t t, int64_t j) {
    const int64_t m0 = t * rows, mr = std::min(rows, M - m0), n0 = j * kBlockN;
    const float* a = x + m0 * K;
    if (!direct) {
      thread_local std::vector<float> scratch;
      if (scratch.size() < static_cast<size_t>(rows * K)) scratch.resize(rows * K);
      im2col_nhwc(p_, H, W, OH, OW, x, m0, mr, scratch.data());
      a = scratch.data();
    }
    gemm::Epilogue ep;
    ep.bias = bias_.data() + n0;
    ep.residual = residual ? residual + m0 * OC + n0 : nullptr;
    ep.ldr = OC;
    ep.act = relu ? gemm::Activation::relu : gemm::Activation::none;
    gemm::gemm(nullptr, mr, a, K, blocks_[j], y + m0 * OC + n0, OC, ep);
  });
}

void conv2d_reference_nchw(const ConvParams& p, int64_t N, int64_t H, int64_t W, const float* x,
                           const float* w, const float* bias, const float* residual, bool relu,
                           float* y) {
  const int64_t C = p.in_channels, OC = p.out_channels, KH = p.kernel_h, KW = p.kernel_w;
  const int64_t OH = conv_out_size(H, KH, p.stride, p.pad);
  const int64_t OW = conv_out_size(W, KW, p.stride, p.pad);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double acc = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ky = 0; ky < KH; ++ky)
              for (int64_t kx = 0; kx < KW; ++kx) {
                const int64_t iy = oy * p.stride - p.pad + ky, ix = ox * p.stride - p.pad + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += double(x[((n * C + c) * H + iy) * W + ix]) *
                       double(w[((o * C + c) * KH + ky) * KW + kx]);
              }
          const int64_t at = ((n * OC + o) * OH + oy) * OW + ox;
          float v = static_cast<float>(acc);
          if (bias) v += bias[o];
          if (residual) v += residual[at];
          y[at] = relu && v < 0.f ? 0.f : v;
        }
}

void nchw_to_nhwc(Parallel* par, int64_t N, int64_t C, int64_t H, int64_t W, const float* x,
                  float* y) {
  parallel_for(par, N * H, [&](int64_t nh) {
    const int64_t n = nh / H, h = nh % H;
    float* dst = y + nh * W * C;
    for (int64_t c = 0; c < C; ++c) {
      const float* src = x + ((n * C + c) * H + h) * W;
      for (int64_t w = 0; w < W; ++w) dst[w * C + c] = src[w];
    }
  });
}

void nhwc_to_nchw(int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t c = 0; c < C; ++c)
          y[((n * C + c) * H + h) * W + w] = x[((n * H + h) * W + w) * C + c];
}

}  // namespace tern::conv
