#pragma once
// Winograd F(4×4, 3×3) transforms for 3×3 stride-1 convolutions on NHWC activations (internal to
// kernels/conv; the algorithm and its blocking: conv.cpp). One config per ISA
// (winograd_<isa>.cpp), chosen by winograd_config(isa); the bodies are written once over the
// vector traits (winograd_impl.hpp), channels a vector at a time, the tail one by one.
//
// Interpolation points 0, ±1, ±2, ∞ (Lavin & Gray's F(4,3)): a 6×6 input tile d gives a 4×4 output
// tile y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with
//   Bᵀ = [4  0 −5  0 1 0;  0 −4 −4  1 1 0;  0 4 −4 −1 1 0;  0 −2 −1 2 1 0;  0 2 −1 −2 1 0;
//         0  4  0 −5 0 1]
//   G  = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0;  0 1 −1 2 −2 0;  0 1 1 4 4 0;  0 1 −1 8 −8 1]
// The 36 products of the middle are 36 GEMMs over channels (conv.cpp); these two transforms are
// the tile's way in and out. Both use only adds and multiplies by powers of two (exact, so fusing
// them into FMAs changes nothing; 5·x is 4·x + x), in the same order on every ISA, so every ISA's
// transforms give the same bits; the GEMMs between them follow the GEMM's contract.
//
//   input:  v[ξ·ldv + c] = (Bᵀ d_c B)[ξ] for c < C, ξ = 6·row + col < 36, where d_c[i][j] =
//           rows[i][(x0 + j)·C + c] (rows[i]: column 0 of the tile's input row i), or 0 when
//           rows[i] is null or x0 + j is outside [0, W) (zero padding: nothing outside the image
//           is read).
//   output: for the output pixels (i, j), i < 4, j < 4, with dst[4·i + j] non-null:
//           dst[4·i + j][c] = act(Σ (Aᵀ m_c A)[i][j] + bias[c] + (res ? res[4·i + j][c] : 0)),
//           m_c[ξ] = m[ξ·ldm + c], c < C; act = relu or identity. res[k] may equal dst[k].
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::conv {

struct WinogradConfig {
  Isa isa;
  // Output channels per packed filter block and per task (conv.cpp). A fused task streams its
  // block's 36 filter planes, and each block costs the fused schedule one input transform of its
  // tiles; point by point, a block only sizes the product tasks.
  int64_t block_n;
  void (*input)(const float* const* rows, int64_t x0, int64_t W, int64_t C, float* v,
                int64_t ldv);
  void (*output)(const float* m, int64_t ldm, int64_t C, const float* bias,
                 float* const* dst, const float* const* res, bool relu);
  const char* name;  // e.g. "f32_winograd_f4x3_c16__avx512"
};

const WinogradConfig& winograd_config(Isa isa);
const WinogradConfig& winograd_config_scalar();
const WinogradConfig& winograd_config_avx2();
const WinogradConfig& winograd_config_avx512();

// Gᵀ-side transform of one 3×3 filter (row-major g[3][3]) into u[36] (ξ = 6·row + col), in double;
// done once at pack time.
void winograd_filter_transform(const float* g, double* u);

}  // namespace tern::conv
