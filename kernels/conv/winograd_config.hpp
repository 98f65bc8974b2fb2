#pragma once
// Winograd F(m×m, 3×3) transforms, m = 4 or 2, for 3×3 stride-1 convolutions on NHWC activations
// (internal to kernels/conv; the algorithm, its blocking and which m a layer takes: conv.cpp). One
// config per ISA (winograd_<isa>.cpp), chosen by winograd_config(isa); the bodies are written once
// over the vector traits and m (winograd_impl.hpp), channels a vector at a time, the tail one by one.
// An (m+2)×(m+2) input tile d gives an m×m output tile y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A; the (m+2)²
// products of the middle are GEMMs over channels (conv.cpp), these two transforms are the tile's
// way in and out.
//
// F(4,3), interpolation points 0, ±1, ±2, ∞ (Lavin & Gray): 36 points, 4× fewer multiplies than
// direct, filters 4× the weights once transformed.
//   Bᵀ = [4  0 −5  0 1 0;  0 −4 −4  1 1 0;  0 4 −4 −1 1 0;  0 −2 −1 2 1 0;  0 2 −1 −2 1 0;
//         0  4  0 −5 0 1]
//   G  = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0;  0 1 −1 2 −2 0;  0 1 1 4 4 0;  0 1 −1 8 −8 1]
// F(2,3), points 0, ±1, ∞: 16 points, 2.25× fewer multiplies, filters 16/9 the weights, and a
// smaller rounding error (G's entries are 0, ±1/2, 1: exact).
//   Bᵀ = [1 0 −1 0;  0 1 1 0;  0 −1 1 0;  0 1 0 −1]
//   G  = [1 0 0; 1/2 1/2 1/2; 1/2 −1/2 1/2; 0 0 1]
//   Aᵀ = [1 1 1 0;  0 1 −1 −1]
// The input and output transforms use only adds and multiplies by powers of two (exact, so fusing
// them into FMAs changes nothing; 5·x is 4·x + x), in the same order on every ISA, so every ISA's
// transforms give the same bits; the GEMMs between them follow the GEMM's contract.
//
// With A = m + 2:
//   input:  v[ξ·ldv + c] = (Bᵀ d_c B)[ξ] for c < C, ξ = A·row + col < A², where d_c[i][j] =
//           rows[i][(x0 + j)·C + c] (rows[i], i < A: column 0 of the tile's input row i), or 0
//           when rows[i] is null or x0 + j is outside [0, W) (zero padding: nothing outside the
//           image is read).
//   output: for the output pixels (i, j), i < m, j < m, with dst[m·i + j] non-null:
//           dst[m·i + j][c] = act(Σ (Aᵀ m_c A)[i][j] + bias[c] + (res ? res[m·i + j][c] : 0)),
//           m_c[ξ] = m[ξ·ldm + c], c < C; act = relu or identity. res[k] may equal dst[k].
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::conv {

// One tile size's pair of transforms.
struct WinogradTransforms {
  void (*input)(const float* const* rows, int64_t x0, int64_t W, int64_t C, float* v,
                int64_t ldv);
  void (*output)(const float* m, int64_t ldm, int64_t C, const float* bias,
                 float* const* dst, const float* const* res, bool relu);
};

struct WinogradConfig {
  Isa isa;
  // Output channels per packed filter block and per task (conv.cpp). A fused task streams its
  // block's filter planes, and each block costs the fused schedule one input transform of its
  // tiles; point by point, a block only sizes the product tasks.
  int64_t block_n;
  WinogradTransforms f4, f2;  // F(4,3) and F(2,3)
  const char* name;           // e.g. "f32_winograd_c16__avx512"

  const WinogradTransforms& tile(int m) const { return m == 2 ? f2 : f4; }
};

const WinogradConfig& winograd_config(Isa isa);
const WinogradConfig& winograd_config_scalar();
const WinogradConfig& winograd_config_avx2();
const WinogradConfig& winograd_config_avx512();

// G g Gᵀ of one 3×3 filter (row-major g[3][3]) for F(m,3), m = 4 or 2, into u[(m+2)²]
// (ξ = (m+2)·row + col), in double; done once at pack time.
void winograd_filter_transform(int m, const float* g, double* u);

}  // namespace tern::conv
