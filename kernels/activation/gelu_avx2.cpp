#include "kernels/activation/gelu_config.hpp"
#include "kernels/simd/vec_avx2.hpp"
#include "kernels/vmath/vec_math_impl.hpp"

namespace tern::activation {
namespace {

using V = simd::F32x8;

void f32_gelu_x8__avx2(int64_t n, const float* x, float* y) {
  vmath::impl::map<V>(n, x, y, [](V::V v) { return vmath::impl::gelu<V>(v); });
}

const GeluConfig kConfig = {Isa::avx2, f32_gelu_x8__avx2, "f32_gelu_x8__avx2"};

}  // namespace

const GeluConfig& gelu_config_avx2() {
  return kConfig;
}

}  // namespace tern::activation
