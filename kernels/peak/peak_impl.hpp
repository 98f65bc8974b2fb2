#pragma once
// The vector FMA-peak loop, written once over a vector-traits type V (kernels/simd/vec_*.hpp) with
// kAcc independent accumulator chains, instantiated in peak_avx2.cpp and peak_avx512.cpp.
// Contract: peak_config.hpp. Internal linkage: one copy per translation unit.
#include <cstdint>

namespace tern::peak::impl {
namespace {

template <typename V, int kAcc>
int64_t fma_loop(int64_t iters, float* sink) {
  static_assert(kAcc <= 32, "the unroll pragma below covers at most 32 chains");
  typename V::V acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = V::set1(0.001f * float(i));
  const auto m = V::set1(0.999999f), a = V::set1(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < kAcc; ++i) acc[i] = V::fmadd(acc[i], m, a);
  }
  auto s = acc[0];
  for (int i = 1; i < kAcc; ++i) s = V::add(s, acc[i]);
  *sink = V::lane0(s);
  return iters * kAcc * V::width * 2;
}

}  // namespace
}  // namespace tern::peak::impl
