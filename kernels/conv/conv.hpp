#pragma once
// f32 2-D convolution on NHWC activations: Winograd F(4,3) for 3×3 stride-1 convolutions where it
// pays, the packed GEMM (kernels/gemm/gemm.hpp) on im2col tiles otherwise.
//
// Layouts (all strides in elements, all tensors dense):
//   input      x [N, H, W, C]           NHWC
//   weight     w [OC, C, KH, KW]        PyTorch's OIHW, given once to Conv2d::pack
//   output     y [N, OH, OW, OC]        NHWC, OH = (H + 2·pad − KH) / stride + 1 (floor)
//   residual   r [N, OH, OW, OC]        optional; may alias y
// y = act(conv(x, w) + bias + residual), the epilogue fused into the last pass over y.
//
// GEMM path. The weight is reordered to [OC, KH, KW, C] so that the GEMM's K index is
// k = (ky·KW + kx)·C + c, the order in which im2col lays out one output pixel's receptive field
// (in NHWC each (ky, kx) tap is a contiguous run of C floats). Output channels are packed in
// column blocks of kBlockN, one PackedB each, so that small-M layers (the 7×7 maps of the last
// stage) still split into several tasks. 1×1 stride-1 pad-0 convs read x directly as
// A [N·H·W, C]. Everything else gathers A one tile of output pixels at a time (im2col; for 1×1
// stride 2 a strided gather) into a per-task buffer that stays in L2, then runs the GEMM on it.
//
// Winograd path (3×3, stride 1, pad 1; winograd_config.hpp has the transforms), F(m,3) with
// m = 4 or 2 (winograd_tile). The output is cut into m×m tiles; a task takes a block of tiles and
// a block of output channels: it transforms the tiles' (m+2)×(m+2) input patches (Bᵀ d B, all C
// channels) into P = (m+2)² planes [tiles, C], multiplies each plane by that point's transformed
// filter (G g Gᵀ, [C, OC], packed once at load) with the packed GEMM, and transforms the P
// product planes back (Aᵀ m A) with bias, residual and ReLU fused, writing only the output pixels
// inside the map. Both buffers are per task and stay in L2. When the filters outweigh the tiles
// (winograd_by_points: batch 1 in the deep layers) the same three steps run one after the other
// over the whole layer instead, each filter plane read once. F(4,3) does 4× fewer multiplies than
// the GEMM path (36 per 4×4 tile against 9 per output), F(2,3) 2.25× (16 per 2×2 tile) with
// filters 16/9 the weights instead of 4×, at the cost of a larger rounding error than the GEMM
// path (F(4,3)'s constants reach 8 and 1/24; measured in tests/test_kernel_conv.cpp and on
// ResNet50 against PyTorch, docs/KERNELS.md).
//
// Tasks are (pixel tile, column block) pairs; every output element is computed by the same
// operations whatever task, batch or thread count it falls in, so results are bit-identical for
// any thread count and an image in a batch equals it alone. Reads of x stay inside
// [0, N·H·W·C); zero padding is never read from memory.
#include <cstdint>
#include <vector>

#include "kernels/gemm/gemm.hpp"
#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern::conv {

// automatic: Winograd for the 3×3 stride-1 pad-1 convolutions it speeds up on the ISA, with the
// tile size that pays (winograd_tile), the GEMM path for the rest. gemm / winograd (F(4,3)) /
// winograd_f2 (F(2,3)) force one (Winograd requires 3×3, stride 1, pad 1); for tests and
// benchmarks.
enum class ConvAlgo { automatic, gemm, winograd, winograd_f2 };

struct ConvParams {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride = 1, pad = 0;
  ConvAlgo algo = ConvAlgo::automatic;
};

// Output extent along one axis; 0 when the kernel does not fit (callers treat that as an error).
inline int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  const int64_t span = in + 2 * pad - kernel;
  return span < 0 ? 0 : span / stride + 1;
}

class Conv2d {
 public:
  static constexpr int64_t kBlockN = 128;

  Conv2d() = default;
  // w: [OC, C, KH, KW] (OIHW), bias: [OC] or null. Both are copied; the caller may free them.
  static Conv2d pack(Isa isa, const ConvParams& p, const float* w, const float* bias);

  const ConvParams& params() const { return p_; }
  Isa isa() const { return isa_; }
  int64_t k() const { return p_.kernel_h * p_.kernel_w * p_.in_channels; }
  bool winograd() const { return wino_m_ != 0; }
  int winograd_tile() const { return wino_m_; }  // m of F(m,3): 4 or 2; 0 on the GEMM path

  // x [N, H, W, C] -> y [N, OH, OW, OC]; residual (may alias y) and relu fused.
  // Requires OH, OW >= 1 (the caller validates user input and reports errors).
  void run(Parallel* par, int64_t N, int64_t H, int64_t W, const float* x, float* y,
           const float* residual = nullptr, bool relu = false) const;

 private:
  void run_gemm(Parallel* par, int64_t N, int64_t H, int64_t W, const float* x, float* y,
                const float* residual, bool relu) const;
  void run_winograd(Parallel* par, int64_t N, int64_t H, int64_t W, const float* x, float* y,
                    const float* residual, bool relu) const;

  ConvParams p_;
  Isa isa_ = Isa::scalar;
  std::vector<gemm::PackedB> blocks_;  // GEMM path: block j holds output channels [j·kBlockN, ...)
  std::vector<gemm::PackedB> wino_;    // Winograd: [block j][point ξ] the [C, nb] filter products
  int wino_m_ = 0;                     // Winograd: the output tile's side (4 or 2); 0: GEMM path
  std::vector<float> bias_;            // [OC], zeros when the conv has none
};

// Whether a Winograd layer of `tiles` output tiles (all images) and `points` = (m+2)² points runs
// point by point: all tiles transformed, then each point's [tiles, C] × [C, OC] product, then all
// tiles back, rather than fused per run of tiles, which streams every filter plane once per run.
// Taken when the transformed tiles and products (points·tiles·(C + OC) floats) are at most half
// the filters (points·C·OC), or at most all of them where the filters are far beyond L2 (8 MiB
// and more, whose re-reads come from L3 or memory). Measured in ResNet50 on Zen 5, AVX-512: the
// 14×14×256 convs (F(4,3)) at batch 1 (16 tiles, 9.4 MB of filters) 0.80 -> 0.69 ms on 1 thread,
// 0.45 -> 0.37 ms on 2; at batch 8 (128 tiles) 4.1 -> 3.7 ms and 2.12 -> 1.93 ms (the model 1-2%
// faster); the 28×28×128 ones at batch 1 (49 tiles, 2.4 MB, not taken) 0.33 -> 0.41 ms had they
// been. Both schedules compute every output element by the same operations, so the choice changes
// no result (an image alone equals it in a batch).
bool winograd_by_points(int points, int64_t tiles, int64_t C, int64_t OC);

// The output tile side m of F(m,3) that Conv2d::pack(isa, p, ...) uses, 4 or 2, or 0 for the
// GEMM path (p.algo, or for automatic the rule in conv.cpp, measured per ISA).
int winograd_tile(Isa isa, const ConvParams& p);
bool use_winograd(Isa isa, const ConvParams& p);  // winograd_tile(isa, p) != 0

// Points of F(m,3): its transformed filter planes and products per tile.
inline int winograd_points(int m) { return (m + 2) * (m + 2); }

// One tile of im2col: rows [m0, m0 + rows) of A [N·OH·OW, KH·KW·C] for input x [N, H, W, C],
// written densely to a (row stride K). Out-of-image taps are zero.
void im2col_nhwc(const ConvParams& p, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x,
                 int64_t m0, int64_t rows, float* a);

// The oracle: direct loops over NCHW tensors with double accumulation, the definition in
// PyTorch's terms. x [N, C, H, W], w [OC, C, KH, KW], residual/y [N, OC, OH, OW].
void conv2d_reference_nchw(const ConvParams& p, int64_t N, int64_t H, int64_t W, const float* x,
                           const float* w, const float* bias, const float* residual, bool relu,
                           float* y);

// Layout changes for the model's edges and for tests. [N, C, H, W] <-> [N, H, W, C].
void nchw_to_nhwc(Parallel* par, int64_t N, int64_t C, int64_t H, int64_t W, const float* x,
                  float* y);
void nhwc_to_nchw(int64_t N, int64_t C, int64_t H, int64_t W, const float* x, float* y);

}  // namespace tern::conv
