#include "kernels/attention/attention_config.hpp"
#include "kernels/attention/attention_impl.hpp"
#include "kernels/attention/attention_transpose_avx.hpp"
#include "kernels/simd/vec_avx512.hpp"

namespace tern::attention {
namespace {

using V = simd::F32x16;
constexpr int kMr = 8;  // rows per register tile: 8 x 32 columns = 16 accumulators

void f32_attention_gemm_8x32__avx512(int64_t rows, int64_t n, int64_t k, const float* a,
                                     int64_t lda, const float* b, int64_t ldb, float* c,
                                     int64_t ldc, const float* c_scale) {
  impl::gemm<V, kMr>(rows, n, k, a, lda, b, ldb, c, ldc, c_scale);
}

float f32_softmax_row_x16__avx512(float* s, int64_t n, int64_t valid, float scale, float* m,
                                  float* l) {
  return impl::softmax_row<V>(s, n, valid, scale, m, l);
}

// 8×8 blocks of 256-bit registers, as AVX2 (a 16×16 form in 512-bit registers was not tried).
void f32_transpose_8x8__avx512(int64_t rows, int64_t cols, const float* src, int64_t lds,
                               float* dst, int64_t ldd) {
  impl::transpose_8x8_blocks(rows, cols, src, lds, dst, ldd);
}

// key tile 256: 32 KiB of scores, within Zen 5's 48 KiB L1; against 128 keys 1.06x at 197 tokens
// (tern_kernel_bench attention, 1x197x12x64: 0.704 -> 0.664 ms)
const AttentionConfig kConfig = {Isa::avx512,
                                 32,
                                 256,
                                 f32_attention_gemm_8x32__avx512,
                                 f32_softmax_row_x16__avx512,
                                 f32_transpose_8x8__avx512,
                                 "f32_attention_8x32__avx512"};

}  // namespace

const AttentionConfig& attention_config_avx512() {
  return kConfig;
}

}  // namespace tern::attention
