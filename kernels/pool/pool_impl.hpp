#pragma once
// The vector pooling bodies, written once over a vector-traits type V (kernels/simd/vec_*.hpp) and
// instantiated in pool_avx2.cpp and pool_avx512.cpp. Contract: pool_config.hpp. Channels a vector
// at a time (sum: four vectors at a time), the rest one by one. Internal linkage: one copy per
// translation unit.
#include <cstdint>

namespace tern::pool::impl {
namespace {

template <typename V>
void max_taps(const float* const* src, int64_t count, int64_t C, float* y) {
  constexpr int W = V::width;
  int64_t c = 0;
  for (; c + W <= C; c += W) {
    auto v = V::load(src[0] + c);
    for (int64_t i = 1; i < count; ++i) v = V::max(v, V::load(src[i] + c));
    V::store(y + c, v);
  }
  for (; c < C; ++c) {
    float v = src[0][c];
    for (int64_t i = 1; i < count; ++i) v = v > src[i][c] ? v : src[i][c];
    y[c] = v;
  }
}

template <typename V>
void sum_rows(const float* x, int64_t rows, int64_t ld, int64_t C, float* y) {
  constexpr int W = V::width;
  int64_t c = 0;
  for (; c + 4 * W <= C; c += 4 * W) {
    auto a0 = V::zero(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = x + r * ld + c;
      a0 = V::add(a0, V::load(p));
      a1 = V::add(a1, V::load(p + W));
      a2 = V::add(a2, V::load(p + 2 * W));
      a3 = V::add(a3, V::load(p + 3 * W));
    }
    V::store(y + c, a0);
    V::store(y + c + W, a1);
    V::store(y + c + 2 * W, a2);
    V::store(y + c + 3 * W, a3);
  }
  for (; c + W <= C; c += W) {
    auto a = V::zero();
    for (int64_t r = 0; r < rows; ++r) a = V::add(a, V::load(x + r * ld + c));
    V::store(y + c, a);
  }
  for (; c < C; ++c) {
    float a = 0.f;
    for (int64_t r = 0; r < rows; ++r) a += x[r * ld + c];
    y[c] = a;
  }
}

}  // namespace
}  // namespace tern::pool::impl
