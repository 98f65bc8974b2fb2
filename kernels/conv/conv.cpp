#include "kernels/conv/conv.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <stdexcept>

#include "kernels/conv/winograd_config.hpp"

namespace tern::conv {

namespace {

bool winograd_shape(const ConvParams& p) {
  return p.kernel_h == 3 && p.kernel_w == 3 && p.stride == 1 && p.pad == 1;
}

}  // namespace

int winograd_tile(Isa isa, const ConvParams& p) {
  switch (p.algo) {
    case ConvAlgo::gemm: return 0;
    case ConvAlgo::winograd: return 4;
    case ConvAlgo::winograd_f2: return 2;
    case ConvAlgo::automatic: break;
  }
  // Measured (tern_kernel_bench conv and ResNet50, Zen 5): with AVX-512, F(4,3) is 2.9x faster
  // than the GEMM path on ResNet50's 64- and 128-channel 3x3 convs, 2.0-2.3x on the 256-channel
  // ones. On the 512-channel 7x7 maps it loses at batch 1 (in the model 1.17 against 1.12 ms on 1
  // thread, 0.93 against 0.60 on 2): its transformed filters are 4x the weights (37.7 MB there),
  // streamed from memory for 4 tiles an image. F(2,3) streams 16/9 of them (16.8 MB) for 16
  // tiles and saves 1.7x of the multiplies: in the model 0.95 ms on 1 thread, 0.56 on 2 at
  // batch 1, and at batch 8 5.2 / 2.7 ms against the GEMM path's 7.7 / 4.0 (F(4,3) would be
  // 4.0 / 2.1 there, but a batch must not change the algorithm: an image's result would then
  // depend on its batch). With AVX2 the multiplies cost twice as much per byte of filter, and
  // F(4,3) wins everywhere (1.45-1.75x against the GEMM path; on the 512-channel maps 1.32 ms
  // against F(2,3)'s 2.19 at batch 1, 8.5 against 10.5 at batch 8, 1 thread). Narrow convs (few
  // multiplies per tile) keep the GEMM path.
  // The 256-channel 14x14 maps stream 9.4 MB of F(4,3) filters a conv for 16 tiles an image, and
  // F(2,3) (4.2 MB) measured faster there too: ResNet50 with AVX-512, alternating binaries,
  // batch 1 32.5 -> 31.1 ms on 1 thread and 19.8 -> 17.4 on 2, batch 8 254.6 -> 250.5 and
  // 138.2 -> 132.9. On the 128-channel 28x28 maps it measured no faster at batch 1 and slower at
  // batch 8 (1 thread 274 -> 280 ms), so they keep F(4,3).
  if (!winograd_shape(p) || p.in_channels < 16 || p.out_channels < 16) return 0;
  return isa == Isa::avx512 && p.in_channels * p.out_channels >= 256 * 256 ? 2 : 4;
}

bool use_winograd(Isa isa, const ConvParams& p) { return winograd_tile(isa, p) != 0; }

Conv2d Conv2d::pack(Isa isa, const ConvParams& p, const float* w, const float* bias) {
  assert(p.in_channels > 0 && p.out_channels > 0 && p.kernel_h > 0 && p.kernel_w > 0);
  assert(p.stride > 0 && p.pad >= 0);
  Conv2d conv;
  conv.p_ = p;
  conv.isa_ = isa;
  const int64_t OC = p.out_channels, C = p.in_channels, KH = p.kernel_h, KW = p.kernel_w;
  const int64_t K = conv.k();
  conv.bias_.assign(static_cast<size_t>(OC), 0.f);
  if (bias != nullptr) std::copy(bias, bias + OC, conv.bias_.begin());
  if (const int m = conv::winograd_tile(isa, p)) {
    if (!winograd_shape(p))
      throw std::invalid_argument("conv: Winograd needs a 3x3 kernel, stride 1 and pad 1");
    conv.wino_m_ = m;
    const int P = winograd_points(m);
    // u[ξ][c][o] = (G g_oc Gᵀ)[ξ], one [C, nb] matrix per point and column block.
    std::vector<double> u(static_cast<size_t>(P));
    std::vector<float> planes(static_cast<size_t>(P * C * OC));
    for (int64_t o = 0; o < OC; ++o)
      for (int64_t c = 0; c < C; ++c) {
        winograd_filter_transform(m, w + (o * C + c) * 9, u.data());
        for (int xi = 0; xi < P; ++xi)
          planes[(xi * C + c) * OC + o] = static_cast<float>(u[xi]);
      }
    const int64_t block_n = winograd_config(isa).block_n;
    std::vector<gemm::PackedB::Source> sources;
    for (int64_t n0 = 0; n0 < OC; n0 += block_n) {
      const int64_t nb = std::min(block_n, OC - n0);
      for (int xi = 0; xi < P; ++xi)
        sources.push_back({planes.data() + xi * C * OC + n0, C, nb, OC, /*b_is_nk=*/false});
    }
    conv.wino_ = gemm::PackedB::pack_all(isa, sources);
    return conv;
  }
  // [OC, C, KH, KW] -> [OC, KH, KW, C]: the im2col order of K.
  std::vector<float> reordered(static_cast<size_t>(OC * K));
  for (int64_t o = 0; o < OC; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ky = 0; ky < KH; ++ky)
        for (int64_t kx = 0; kx < KW; ++kx)
          reordered[o * K + (ky * KW + kx) * C + c] = w[((o * C + c) * KH + ky) * KW + kx];
  std::vector<gemm::PackedB::Source> sources;
  for (int64_t n0 = 0; n0 < OC; n0 += kBlockN)
    sources.push_back({reordered.data() + n0 * K, K, std::min(kBlockN, OC - n0), K,
                       /*b_is_nk=*/true});
  conv.blocks_ = gemm::PackedB::pack_all(isa, sources);
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
  if (winograd())
    run_winograd(par, N, H, W, x, y, residual, relu);
  else
    run_gemm(par, N, H, W, x, y, residual, relu);
}

// Winograd tasks per column block: the tiles split into runs as even as the count allows, each at
// most ~384 KiB of input planes in L2 (P × tiles × C floats, at most 4 row panels), and the
// number of tasks a multiple of the thread count where the tiles allow, so no thread idles on a
// short last task (the 16 tiles of a 14×14 map ran 12 + 4 on two threads). How the tiles are cut
// does not change any result: each tile is transformed and multiplied the same way in any run.
static int64_t winograd_tasks(Isa isa, int64_t P, int64_t T, int64_t C, int64_t blocks,
                              int64_t threads) {
  const int64_t mr = gemm::rows_per_panel(isa);
  auto panels = [&](int64_t r) { return std::max(mr, r / mr * mr); };
  int64_t tb = panels(std::min<int64_t>(96 * 1024 / (P * C), 4 * mr));
  while (tb > mr && ((T + tb - 1) / tb) * blocks < 8) tb = panels(tb / 2);
  int64_t tasks = (T + tb - 1) / tb;
  while ((tasks * blocks) % threads != 0 && tasks < T) ++tasks;
  return tasks;
}

bool winograd_by_points(int points, int64_t tiles, int64_t C, int64_t OC) {
  const int64_t planes = tiles * (C + OC), filters = C * OC;  // floats per point
  constexpr int64_t kFarBeyondL2 = int64_t{8} << 20;          // bytes of transformed filters
  return 2 * planes <= filters || (planes <= filters && points * filters * 4 >= kFarBeyondL2);
}

namespace {

// The m×m output tiles of an [N, H, W, ·] map, numbered image by image, row-major, and what the
// transforms need of tile t: its m + 2 input rows and its m² output (and residual) pixels.
struct WinogradTiles {
  const WinogradTransforms& uk;
  int m;
  int64_t H, W, th, tw;

  WinogradTiles(const WinogradConfig& cfg, int m_, int64_t H_, int64_t W_)
      : uk(cfg.tile(m_)), m(m_), H(H_), W(W_), th((H_ + m_ - 1) / m_), tw((W_ + m_ - 1) / m_) {}

  void origin(int64_t t, int64_t& n, int64_t& oy0, int64_t& ox0) const {
    n = t / (th * tw);
    oy0 = (t / tw) % th * m;
    ox0 = t % tw * m;
  }
  // Transforms tile t of x [N, H, W, C] into v[ξ·ldv + c] (uk.input).
  void input(const float* x, int64_t C, int64_t t, float* v, int64_t ldv) const {
    int64_t n, oy0, ox0;
    origin(t, n, oy0, ox0);
    const float* rows[6];
    for (int i = 0; i < m + 2; ++i) {
      const int64_t iy = oy0 - 1 + i;
      rows[i] = iy >= 0 && iy < H ? x + (n * H + iy) * W * C : nullptr;
    }
    uk.input(rows, ox0 - 1, W, C, v, ldv);
  }
  // Transforms the products prod[ξ·ldm + c], c < nb, back into tile t's pixels of y [N, H, W, OC],
  // channels [n0, n0 + nb), with bias, residual and ReLU (uk.output).
  void output(const float* prod, int64_t ldm, int64_t nb, const float* bias, float* y,
              const float* residual, int64_t OC, int64_t n0, int64_t t, bool relu) const {
    int64_t n, oy0, ox0;
    origin(t, n, oy0, ox0);
    float* dst[16];
    const float* res[16];
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < m; ++j) {
        const int64_t oy = oy0 + i, ox = ox0 + j;
        const bool inside = oy < H && ox < W;
        const int64_t at = ((n * H + oy) * W + ox) * OC + n0;
        dst[m * i + j] = inside ? y + at : nullptr;
        res[m * i + j] = inside && residual ? residual + at : nullptr;
      }
    uk.output(prod, ldm, nb, bias, dst, residual ? res : nullptr, relu);
  }
};

}  // namespace

void Conv2d::run_winograd(Parallel* par, int64_t N, int64_t H, int64_t W, const float* x,
                          float* y, const float* residual, bool relu) const {
  const WinogradConfig& uk = winograd_config(isa_);
  const int P = winograd_points(wino_m_);
  const int64_t C = p_.in_channels, OC = p_.out_channels;
  const WinogradTiles tiles(uk, wino_m_, H, W);
  const int64_t T = N * tiles.th * tiles.tw;
  const int64_t block_n = uk.block_n, blocks = (OC + block_n - 1) / block_n;
  if (winograd_by_points(P, T, C, OC)) {
    // Point by point: every tile into v [P][T][C], then one task per (point, column block)
    // multiplies its plane by the point's filter into m [P][T][OC], then every tile back. Each
    // filter plane is read once; the fused schedule below reads a column block's P planes once
    // per run of tiles, which is the layer's largest traffic when the filters outweigh the tiles
    // (batch 1 in ResNet50's third stage: 9.4 MB of filters, 16 tiles).
    thread_local std::vector<float> v_buf, m_buf;  // the calling thread's, shared by the tasks
    if (v_buf.size() < static_cast<size_t>(P * T * C)) v_buf.resize(P * T * C);
    if (m_buf.size() < static_cast<size_t>(P * T * OC)) m_buf.resize(P * T * OC);
    float* v = v_buf.data();
    float* m = m_buf.data();
    parallel_for(par, T, [&](int64_t t) { tiles.input(x, C, t, v + t * C, T * C); });
    parallel_for_2d(par, blocks, P, [&](int64_t j, int64_t xi) {  // the order of wino_
      gemm::gemm(nullptr, T, v + xi * T * C, C, wino_[j * P + xi],
                 m + xi * T * OC + j * block_n, OC);
    });
    parallel_for(par, T, [&](int64_t t) {
      tiles.output(m + t * OC, T * OC, OC, bias_.data(), y, residual, OC, 0, t, relu);
    });
    return;
  }
  // Fused: a task transforms its run of tiles, multiplies them by one column block's P planes
  // and transforms them back, its buffers in L2.
  const int64_t tasks = winograd_tasks(isa_, P, T, C, blocks, par ? par->num_threads() : 1);
  const int64_t tb = (T + tasks - 1) / tasks;  // the most tiles a task gets
  parallel_for_2d(par, tasks, blocks, [&](int64_t b, int64_t j) {
    const int64_t t0 = T * b / tasks, nt = T * (b + 1) / tasks - t0;
    const int64_t n0 = j * block_n, nb = std::min(block_n, OC - n0);
    thread_local std::vector<float> v_buf, m_buf;
    if (v_buf.size() < static_cast<size_t>(P * tb * C)) v_buf.resize(P * tb * C);
    if (m_buf.size() < static_cast<size_t>(P * tb * nb)) m_buf.resize(P * tb * nb);
    float* v = v_buf.data();
    float* m = m_buf.data();
    for (int64_t t = 0; t < nt; ++t) tiles.input(x, C, t0 + t, v + t * C, tb * C);
    for (int64_t xi = 0; xi < P; ++xi)
      gemm::gemm(nullptr, nt, v + xi * tb * C, C, wino_[j * P + xi], m + xi * tb * nb, nb);
    for (int64_t t = 0; t < nt; ++t)
      tiles.output(m + t * nb, tb * nb, nb, bias_.data() + n0, y, residual, OC, n0, t0 + t,
                   relu);
  });
}

void Conv2d::run_gemm(Parallel* par, int64_t N, int64_t H, int64_t W, const float* x, float* y,
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
