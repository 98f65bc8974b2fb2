#include "kernels/pool/pool_config.hpp"
#include "kernels/pool/pool_impl.hpp"
#include "kernels/simd/vec_avx2.hpp"

namespace tern::pool {
namespace {

void f32_max_c8__avx2(const float* const* src, int64_t count, int64_t C, float* y) {
  impl::max_taps<simd::F32x8>(src, count, C, y);
}

void f32_sum_c32__avx2(const float* x, int64_t rows, int64_t ld, int64_t C, float* y) {
  impl::sum_rows<simd::F32x8>(x, rows, ld, C, y);
}

const PoolConfig kConfig = {Isa::avx2, f32_max_c8__avx2, f32_sum_c32__avx2, "f32_pool_c8__avx2"};

}  // namespace

const PoolConfig& pool_config_avx2() {
  return kConfig;
}

}  // namespace tern::pool
