#include "kernels/peak/peak_config.hpp"
#include "kernels/peak/peak_impl.hpp"
#include "kernels/simd/vec_avx512.hpp"

namespace tern::peak {
namespace {

// 24 independent chains of 16-wide FMAs: covers two 512-bit pipes at up to 12 cycles of latency.
int64_t f32_fma_loop_24x16__avx512(int64_t iters, float* sink) {
  return impl::fma_loop<simd::F32x16, 24>(iters, sink);
}

const PeakConfig kConfig = {Isa::avx512, f32_fma_loop_24x16__avx512, "f32_fma_loop_24x16__avx512"};

}  // namespace

const PeakConfig& peak_config_avx512() {
  return kConfig;
}

}  // namespace tern::peak
