#pragma once
// Vector exp / erf / GELU written once over a vector-traits type V (kernels/simd/vec_*.hpp) and
// instantiated in each per-ISA file: vec_math_<isa>.cpp, and the kernels that fuse these functions
// into their own loops (GEMM epilogues, attention softmax, activation/gelu). Algorithms and
// accuracy: vec_math_coeffs.hpp. NaN in gives NaN out. Internal linkage (anonymous namespace): each
// translation unit keeps its own copy, compiled with its own ISA flags.
#include <cstdint>
#include <cstring>

#include "kernels/vmath/vec_math_coeffs.hpp"

namespace tern::vmath::impl {
namespace {

template <typename V, int N>
inline typename V::V horner(typename V::V x, const float (&c)[N]) {
  typename V::V p = V::set1(c[0]);
  for (int i = 1; i < N; ++i) p = V::fmadd(p, x, V::set1(c[i]));
  return p;
}

template <typename V>
inline typename V::V exp(typename V::V x) {
  // max/min return their second operand when either is NaN: NaN passes through.
  x = V::min(V::set1(kExpMaxX), V::max(V::set1(kExpMinX), x));
  const auto n = V::round_nearest(V::mul(x, V::set1(kLog2e)));
  auto r = V::fnmadd(n, V::set1(kLn2Hi), x);
  r = V::fnmadd(n, V::set1(kLn2Lo), r);
  return V::scale_pow2(horner<V>(r, kExpTaylor), n);
}

// erfc(z) for z in [kErfSplit, inf): 0 from kErfTailEnd on.
template <typename V>
inline typename V::V erfc_tail(typename V::V z) {
  const auto zc = V::min(V::set1(kErfTailEnd), z);
  const auto hi = V::mul(zc, zc);
  const auto lo = V::fmsub(zc, zc, hi);
  const auto e = V::mul(exp<V>(V::sub(V::zero(), hi)), V::sub(V::set1(1.f), lo));
  const auto g = horner<V>(V::sub(zc, V::set1(kErfcCenter)), kErfcTail);
  return V::zero_unless(V::nge(z, V::set1(kErfTailEnd)), V::mul(e, g));  // z < end or NaN
}

template <typename V>
inline typename V::V erf(typename V::V x) {
  const auto a = V::abs(x);
  const auto small = V::mul(x, horner<V>(V::mul(x, x), kErfSmall));
  const auto big = V::or_bits(V::sign_bits(x), V::sub(V::set1(1.f), erfc_tail<V>(a)));
  return V::blend(V::lt(a, V::set1(kErfSplit)), big, small);
}

// 0.5·x·(1 + erf(x/√2))
template <typename V>
inline typename V::V gelu(typename V::V x) {
  const auto half = V::set1(0.5f);
  const auto z = V::mul(x, V::set1(kInvSqrt2));
  const auto a = V::abs(z);
  const auto phi_small = V::fmadd(V::mul(z, horner<V>(V::mul(z, z), kErfSmall)), half, half);
  const auto half_erfc = V::mul(half, erfc_tail<V>(a));
  const auto phi_big = V::blend(V::lt(x, V::zero()), V::sub(V::set1(1.f), half_erfc), half_erfc);
  return V::mul(x, V::blend(V::lt(a, V::set1(kErfSplit)), phi_big, phi_small));
}

// y[i] = f(x[i]) for i < n, a vector at a time; the tail goes through a zero-filled buffer, so
// exactly n elements are read and written. y may alias x.
template <typename V, typename F>
inline void map(int64_t n, const float* x, float* y, F f) {
  constexpr int W = V::width;
  int64_t i = 0;
  for (; i + W <= n; i += W) V::store(y + i, f(V::load(x + i)));
  if (i < n) {
    alignas(64) float buf[W] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    V::store(buf, f(V::load(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

}  // namespace
}  // namespace tern::vmath::impl
