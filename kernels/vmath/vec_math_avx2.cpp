#include "kernels/simd/vec_avx2.hpp"
#include "kernels/vmath/vec_math_config.hpp"
#include "kernels/vmath/vec_math_impl.hpp"

namespace tern::vmath {
namespace {

using V = simd::F32x8;

void f32_exp_x8__avx2(int64_t n, const float* x, float* y) {
  impl::map<V>(n, x, y, [](V::V v) { return impl::exp<V>(v); });
}

void f32_erf_x8__avx2(int64_t n, const float* x, float* y) {
  impl::map<V>(n, x, y, [](V::V v) { return impl::erf<V>(v); });
}

const VecMathConfig kConfig = {Isa::avx2, f32_exp_x8__avx2, f32_erf_x8__avx2, "f32_vmath_x8__avx2"};

}  // namespace

const VecMathConfig& vec_math_config_avx2() {
  return kConfig;
}

}  // namespace tern::vmath
