#include "kernels/attention/attention_config.hpp"
#include "kernels/attention/attention_impl.hpp"
#include "kernels/attention/attention_transpose_avx.hpp"
#include "kernels/simd/vec_avx2.hpp"

namespace tern::attention {
namespace {

using V = simd::F32x8;
constexpr int kMr = 4;  // rows per register tile: 4 x 16 columns = 8 accumulators

void f32_attention_gemm_4x16__avx2(int64_t rows, int64_t n, int64_t k, const float* a, int64_t lda,
                                   const float* b, int64_t ldb, float* c, int64_t ldc,
                                   const float* c_scale) {
  impl::gemm<V, kMr>(rows, n, k, a, lda, b, ldb, c, ldc, c_scale);
}

float f32_softmax_row_x8__avx2(float* s, int64_t n, int64_t valid, float scale, float* m,
                               float* l) {
  return impl::softmax_row<V>(s, n, valid, scale, m, l);
}

void f32_transpose_8x8__avx2(int64_t rows, int64_t cols, const float* src, int64_t lds,
                             float* dst, int64_t ldd) {
  impl::transpose_8x8_blocks(rows, cols, src, lds, dst, ldd);
}

// key tile 128: 16 KiB of scores, within Zen 3's 32 KiB L1
const AttentionConfig kConfig = {Isa::avx2,
                                 16,
                                 128,
                                 f32_attention_gemm_4x16__avx2,
                                 f32_softmax_row_x8__avx2,
                                 f32_transpose_8x8__avx2,
                                 "f32_attention_4x16__avx2"};

}  // namespace

const AttentionConfig& attention_config_avx2() {
  return kConfig;
}

}  // namespace tern::attention
