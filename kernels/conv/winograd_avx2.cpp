#include "kernels/conv/winograd_config.hpp"
#include "kernels/conv/winograd_impl.hpp"
#include "kernels/simd/vec_avx2.hpp"

namespace tern::conv {
namespace {

template <int M>
void f32_winograd_input_c8__avx2(const float* const* rows, int64_t x0, int64_t W, int64_t C,
                                float* v, int64_t ldv) {
  impl::input_tile<M, simd::F32x8>(rows, x0, W, C, v, ldv);
}

template <int M>
void f32_winograd_output_c8__avx2(const float* m, int64_t ldm, int64_t C, const float* bias,
                                 float* const* dst, const float* const* res, bool relu) {
  impl::output_tile<M, simd::F32x8>(m, ldm, C, bias, dst, res, relu);
}

// block_n 256: with AVX2 the 512-channel layers run by Winograd too, and 128-channel blocks
// (twice the input transforms) measured 4% slower on ResNet50 at batch 1, 1 thread.
const WinogradConfig kConfig = {Isa::avx2,
                                256,
                                {f32_winograd_input_c8__avx2<4>, f32_winograd_output_c8__avx2<4>},
                                {f32_winograd_input_c8__avx2<2>, f32_winograd_output_c8__avx2<2>},
                                "f32_winograd_c8__avx2"};

}  // namespace

const WinogradConfig& winograd_config_avx2() { return kConfig; }

}  // namespace tern::conv
