#include "kernels/conv/winograd_config.hpp"
#include "kernels/conv/winograd_impl.hpp"
#include "kernels/simd/vec_avx512.hpp"

namespace tern::conv {
namespace {

void f32_winograd_f4x3_input_c16__avx512(const float* const* rows, int64_t x0, int64_t W, int64_t C,
                                     float* v, int64_t ldv) {
  impl::input_tile<simd::F32x16>(rows, x0, W, C, v, ldv);
}

void f32_winograd_f4x3_output_c16__avx512(const float* m, int64_t ldm, int64_t C, const float* bias,
                                      float* const* dst, const float* const* res, bool relu) {
  impl::output_tile<simd::F32x16>(m, ldm, C, bias, dst, res, relu);
}

// block_n 128: at batch 1 the two threads each stream half of a 256-channel layer's filters
// (9.4 MB transformed) instead of all of them for half the tiles. ResNet50 batch 1 (Zen 5,
// alternating): 2 threads 1-2% faster (17.50 -> 17.28 ms), 1 thread 32.28 -> 32.00, batch 8 equal.
const WinogradConfig kConfig = {Isa::avx512, 128, f32_winograd_f4x3_input_c16__avx512,
                                f32_winograd_f4x3_output_c16__avx512, "f32_winograd_f4x3_c16__avx512"};

}  // namespace

const WinogradConfig& winograd_config_avx512() { return kConfig; }

}  // namespace tern::conv
