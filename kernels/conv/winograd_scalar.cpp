#include "kernels/conv/winograd_config.hpp"
#include "kernels/conv/winograd_impl.hpp"

namespace tern::conv {
namespace {

template <int M>
void f32_winograd_input__scalar(const float* const* rows, int64_t x0, int64_t W, int64_t C,
                                float* v, int64_t ldv) {
  impl::input_tile<M, impl::F32x1>(rows, x0, W, C, v, ldv);
}

template <int M>
void f32_winograd_output__scalar(const float* m, int64_t ldm, int64_t C, const float* bias,
                                 float* const* dst, const float* const* res, bool relu) {
  impl::output_tile<M, impl::F32x1>(m, ldm, C, bias, dst, res, relu);
}

// block_n 256: as AVX2.
const WinogradConfig kConfig = {Isa::scalar,
                                256,
                                {f32_winograd_input__scalar<4>, f32_winograd_output__scalar<4>},
                                {f32_winograd_input__scalar<2>, f32_winograd_output__scalar<2>},
                                "f32_winograd__scalar"};

}  // namespace

const WinogradConfig& winograd_config_scalar() { return kConfig; }

}  // namespace tern::conv
