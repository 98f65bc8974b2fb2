#pragma once
// The attention family's microkernels, one config per ISA (attention_<isa>.cpp), chosen once by
// attention_config(isa); the tiling lives in attention.cpp.
#include <cstdint>

#include "kernels/isa.hpp"

namespace tern::attention {

struct AttentionConfig {
  Isa isa;
  // Column granularity: every n below is a multiple of nr, and packed rows are padded to it.
  int64_t nr;
  // Keys per tile of the online softmax (a multiple of nr): the [kQueryBlock × key_tile] score
  // tile stays in L1, and every key tile past the first rescales the output accumulator.
  int64_t key_tile;
  // C[rows, n] = (c_scale ? c_scale[r] · C[r, :] : 0) + A[rows, k] · B[k, n].
  // A row-major (lda), B row-major (ldb), C row-major (ldc). rows >= 1, k >= 1.
  // f32_attention_gemm_4x16__avx2, ...
  void (*gemm)(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
               int64_t ldb, float* c, int64_t ldc, const float* c_scale);
  // One step of online softmax on a score row s[0, n) of which s[0, valid) are real
  // (1 <= valid <= n): m_new = max(*m, scale · max s); s[j] = exp(scale · s[j] - m_new) for
  // j < valid and 0 after; *l = *l · exp(*m - m_new) + sum(s); *m = m_new. Returns
  // exp(m_old - m_new) (0 when m_old is -inf), the factor for the output accumulated so far.
  // f32_softmax_row_x8__avx2, ...
  float (*softmax_row)(float* s, int64_t n, int64_t valid, float scale, float* m, float* l);
  // The transpose that packs Kᵀ: dst[d·ldd + j] = src[j·lds + d] for j < rows, d < cols (an exact
  // copy: every variant gives the same bits). f32_transpose__scalar, f32_transpose_8x8__avx2, ...
  void (*transpose)(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst,
                    int64_t ldd);
  const char* name;
};

const AttentionConfig& attention_config(Isa isa);
const AttentionConfig& attention_config_scalar();
const AttentionConfig& attention_config_avx2();
const AttentionConfig& attention_config_avx512();

}  // namespace tern::attention
