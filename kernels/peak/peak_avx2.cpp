#include "kernels/peak/peak_config.hpp"
#include "kernels/peak/peak_impl.hpp"
#include "kernels/simd/vec_avx2.hpp"

namespace tern::peak {
namespace {

// 12 independent chains of 8-wide FMAs: 2 pipes × 4-5 cycles latency needs at least 10.
int64_t f32_fma_loop_12x8__avx2(int64_t iters, float* sink) {
  return impl::fma_loop<simd::F32x8, 12>(iters, sink);
}

const PeakConfig kConfig = {Isa::avx2, f32_fma_loop_12x8__avx2, "f32_fma_loop_12x8__avx2"};

}  // namespace

const PeakConfig& peak_config_avx2() {
  return kConfig;
}

}  // namespace tern::peak
