#pragma once
// The vector LayerNorm body, written once over a vector-traits type V (kernels/simd/vec_*.hpp)
// and instantiated in layer_norm_avx2.cpp and layer_norm_avx512.cpp. Contract: layer_norm.hpp.
// Statistics: two accumulator vectors for the sums of (x - shift) and (x - shift)², then one
// vector, then scalars, reduced in a fixed order. Internal linkage: one copy per translation unit.
#include <cmath>
#include <cstdint>

namespace tern::norm::impl {
namespace {

template <typename V>
void layer_norm_rows(int64_t rows, int64_t dim, const float* x, int64_t ldx, const float* gamma,
                     const float* beta, float eps, float* y, int64_t ldy) {
  constexpr int W = V::width;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    const float shift = xr[0];
    const auto vshift = V::set1(shift);
    auto s0 = V::zero(), s1 = V::zero(), q0 = V::zero(), q1 = V::zero();
    int64_t c = 0;
    for (; c + 2 * W <= dim; c += 2 * W) {
      const auto d0 = V::sub(V::load(xr + c), vshift);
      const auto d1 = V::sub(V::load(xr + c + W), vshift);
      s0 = V::add(s0, d0);
      s1 = V::add(s1, d1);
      q0 = V::fmadd(d0, d0, q0);
      q1 = V::fmadd(d1, d1, q1);
    }
    for (; c + W <= dim; c += W) {
      const auto d0 = V::sub(V::load(xr + c), vshift);
      s0 = V::add(s0, d0);
      q0 = V::fmadd(d0, d0, q0);
    }
    float s = V::reduce_add(V::add(s0, s1)), ss = V::reduce_add(V::add(q0, q1));
    for (; c < dim; ++c) {
      const float d = xr[c] - shift;
      s += d;
      ss += d * d;
    }
    const float n = static_cast<float>(dim);
    const float dmean = s / n;
    const float var = std::fmax(ss / n - dmean * dmean, 0.f);
    const float mean = shift + dmean;
    const float inv = 1.f / std::sqrt(var + eps);
    const auto vmean = V::set1(mean), vinv = V::set1(inv);
    c = 0;
    for (; c + W <= dim; c += W) {
      const auto t = V::mul(V::sub(V::load(xr + c), vmean), vinv);
      V::store(yr + c, V::fmadd(t, V::load(gamma + c), V::load(beta + c)));
    }
    for (; c < dim; ++c) yr[c] = std::fma((xr[c] - mean) * inv, gamma[c], beta[c]);
  }
}

}  // namespace
}  // namespace tern::norm::impl
