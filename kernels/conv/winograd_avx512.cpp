#include "kernels/conv/winograd_config.hpp"
#include "kernels/conv/winograd_impl.hpp"
#include "kernels/simd/vec_avx512.hpp"

namespace tern::conv {
namespace {

template <int M>
void f32_winograd_input_c16__avx512(const float* const* rows, int64_t x0, int64_t W, int64_t C,
                                float* v, int64_t ldv) {
  impl::input_tile<M, simd::F32x16>(rows, x0, W, C, v, ldv);
}

template <int M>
void f32_winograd_output_c16__avx512(const float* m, int64_t ldm, int64_t C, const float* bias,
                                 float* const* dst, const float* const* res, bool relu) {
  impl::output_tile<M, simd::F32x16>(m, ldm, C, bias, dst, res, relu);
}

// block_n 128: chosen when ResNet50's 256-channel layers ran fused at batch 1 (the two threads
// then each streamed half of a layer's 9.4 MB of filters: 2 threads 17.50 -> 17.28 ms against
// 256). Those layers now run point by point at batches 1 and 8 (conv.cpp), where the block only
// sizes the product tasks: 128 and 256 measured equal within 1% since (Zen 5, alternating;
// batch 1, 1 thread 31.40 / 31.32 ms, 2 threads 20.19 / 19.96; batch 8, 2 threads 122.3 / 122.8).
const WinogradConfig kConfig = {Isa::avx512,
                                128,
                                {f32_winograd_input_c16__avx512<4>,
                                 f32_winograd_output_c16__avx512<4>},
                                {f32_winograd_input_c16__avx512<2>,
                                 f32_winograd_output_c16__avx512<2>},
                                "f32_winograd_c16__avx512"};

}  // namespace

const WinogradConfig& winograd_config_avx512() { return kConfig; }

}  // namespace tern::conv
