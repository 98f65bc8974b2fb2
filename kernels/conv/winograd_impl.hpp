#pragma once
// The Winograd F(4,3) and F(2,3) transform bodies, written once over a vector-traits type V
// (kernels/simd/vec_*.hpp) and over the output tile size M (4 or 2), instantiated in
// winograd_<isa>.cpp; contract: winograd_config.hpp.
// Channels V::width at a time, the tail (and the whole scalar variant) through F32x1 below, the
// same operations in the same order, so every ISA gives the same bits. Internal linkage: one copy
// per translation unit.
#include <cstdint>

namespace tern::conv::impl {
namespace {

// One float as a "vector": the tail and the scalar variant.
struct F32x1 {
  using V = float;
  static constexpr int width = 1;
  static V load(const float* p) { return *p; }
  static void store(float* p, V v) { *p = v; }
  static V zero() { return 0.f; }
  static V set1(float x) { return x; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V max(V a, V b) { return a > b ? a : b; }  // maxps: b when either is NaN
};

// Every multiply here is by a power of two, exact, so a compiler that fuses it with the add that
// follows (GCC does, on the FMA targets) cannot change the result: that is what keeps the ISAs
// bit-identical. 5·x is written 4·x + x (one rounding of the exact 5·x, like a multiply).
template <typename T>
inline typename T::V times5(typename T::V x) {
  return T::add(T::mul(x, T::set1(4.f)), x);
}

// r = Bᵀ d for one column (or row) of six values.
template <typename T>
inline void bt6(const typename T::V* d, int64_t step, typename T::V* r, int64_t rstep) {
  using V = typename T::V;
  const V two = T::set1(2.f), four = T::set1(4.f);
  const V d0 = d[0], d1 = d[step], d2 = d[2 * step], d3 = d[3 * step], d4 = d[4 * step],
          d5 = d[5 * step];
  const V d4m2 = T::sub(d4, d2), d3m1 = T::mul(T::sub(d3, d1), two);
  r[0] = T::sub(T::add(T::mul(d0, four), d4), times5<T>(d2));
  r[rstep] = T::sub(T::add(d3, d4), T::mul(T::add(d1, d2), four));
  r[2 * rstep] = T::add(T::sub(d4, d3), T::mul(T::sub(d1, d2), four));
  r[3 * rstep] = T::add(d4m2, d3m1);
  r[4 * rstep] = T::sub(d4m2, d3m1);
  r[5 * rstep] = T::sub(T::add(T::mul(d1, four), d5), times5<T>(d3));
}

// o = Aᵀ m for one column (or row) of six values.
template <typename T>
inline void at6(const typename T::V* m, int64_t step, typename T::V* o, int64_t ostep) {
  using V = typename T::V;
  const V m0 = m[0], m1 = m[step], m2 = m[2 * step], m3 = m[3 * step], m4 = m[4 * step],
          m5 = m[5 * step];
  const V a = T::add(m1, m2), b = T::sub(m1, m2), c = T::add(m3, m4), d = T::sub(m3, m4);
  o[0] = T::add(T::add(m0, a), c);
  o[ostep] = T::add(b, T::mul(d, T::set1(2.f)));
  o[2 * ostep] = T::add(a, T::mul(c, T::set1(4.f)));
  o[3 * ostep] = T::add(T::add(b, T::mul(d, T::set1(8.f))), m5);
}

// F(2,3): r = Bᵀ d for one column (or row) of four values, Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0;
// 0 1 0 −1] (adds only).
template <typename T>
inline void bt4(const typename T::V* d, int64_t step, typename T::V* r, int64_t rstep) {
  const auto d0 = d[0], d1 = d[step], d2 = d[2 * step], d3 = d[3 * step];
  r[0] = T::sub(d0, d2);
  r[rstep] = T::add(d1, d2);
  r[2 * rstep] = T::sub(d2, d1);
  r[3 * rstep] = T::sub(d1, d3);
}

// F(2,3): o = Aᵀ m for one column (or row) of four values, Aᵀ = [1 1 1 0; 0 1 −1 −1].
template <typename T>
inline void at4(const typename T::V* m, int64_t step, typename T::V* o, int64_t ostep) {
  const auto m0 = m[0], m1 = m[step], m2 = m[2 * step], m3 = m[3 * step];
  o[0] = T::add(T::add(m0, m1), m2);
  o[ostep] = T::sub(T::sub(m1, m2), m3);
}

// The tile's side in input (A = M + 2) and its one-dimensional transforms.
template <int M, typename T>
inline void bt(const typename T::V* d, int64_t step, typename T::V* r, int64_t rstep) {
  if constexpr (M == 4) bt6<T>(d, step, r, rstep);
  else bt4<T>(d, step, r, rstep);
}
template <int M, typename T>
inline void at(const typename T::V* m, int64_t step, typename T::V* o, int64_t ostep) {
  if constexpr (M == 4) at6<T>(m, step, o, ostep);
  else at4<T>(m, step, o, ostep);
}

// Channels [c, c + T::width) of one tile.
template <int M, typename T>
inline void input_lanes(const float* const* rows, int64_t x0, int64_t W, int64_t C, int64_t c,
                        float* v, int64_t ldv) {
  using V = typename T::V;
  constexpr int A = M + 2;
  V d[A * A], t[A * A];
  for (int i = 0; i < A; ++i)
    for (int j = 0; j < A; ++j) {
      const int64_t ix = x0 + j;
      d[A * i + j] = rows[i] != nullptr && ix >= 0 && ix < W ? T::load(rows[i] + ix * C + c)
                                                              : T::zero();
    }
  for (int j = 0; j < A; ++j) bt<M, T>(d + j, A, t + j, A);  // columns: t = Bᵀ d
  for (int i = 0; i < A; ++i) {                              // rows: (Bᵀ d) B
    V r[A];
    bt<M, T>(t + A * i, 1, r, 1);
    for (int k = 0; k < A; ++k) T::store(v + (A * i + k) * ldv + c, r[k]);
  }
}

template <int M, typename T>
inline void output_lanes(const float* m, int64_t ldm, int64_t c, const float* bias,
                         float* const* dst, const float* const* res, bool relu) {
  using V = typename T::V;
  constexpr int A = M + 2;
  V mm[A * A], s[M * A];
  for (int xi = 0; xi < A * A; ++xi) mm[xi] = T::load(m + xi * ldm + c);
  for (int j = 0; j < A; ++j) at<M, T>(mm + j, A, s + j, A);  // columns: s = Aᵀ m (M × A)
  const V b = T::load(bias + c);
  for (int i = 0; i < M; ++i) {  // rows: (Aᵀ m) A
    V y[M];
    at<M, T>(s + A * i, 1, y, 1);
    for (int j = 0; j < M; ++j) {
      float* out = dst[M * i + j];
      if (out == nullptr) continue;
      V o = T::add(y[j], b);
      if (res != nullptr) o = T::add(o, T::load(res[M * i + j] + c));
      if (relu) o = T::max(T::zero(), o);
      T::store(out + c, o);
    }
  }
}

template <int M, typename T>
void input_tile(const float* const* rows, int64_t x0, int64_t W, int64_t C, float* v,
                int64_t ldv) {
  int64_t c = 0;
  for (; c + T::width <= C; c += T::width) input_lanes<M, T>(rows, x0, W, C, c, v, ldv);
  for (; c < C; ++c) input_lanes<M, F32x1>(rows, x0, W, C, c, v, ldv);
}

template <int M, typename T>
void output_tile(const float* m, int64_t ldm, int64_t C, const float* bias, float* const* dst,
                 const float* const* res, bool relu) {
  int64_t c = 0;
  for (; c + T::width <= C; c += T::width) output_lanes<M, T>(m, ldm, c, bias, dst, res, relu);
  for (; c < C; ++c) output_lanes<M, F32x1>(m, ldm, c, bias, dst, res, relu);
}

}  // namespace
}  // namespace tern::conv::impl
