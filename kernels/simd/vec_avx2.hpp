#pragma once
// Vector traits for AVX2 + FMA: 8 floats in a __m256, comparison masks as __m256 (all-ones lanes).
// Kernel bodies written once over a traits type (kernels/*/..._impl.hpp) are instantiated with
// this one in *_avx2.cpp files only. Everything here has internal linkage (anonymous namespace),
// so each translation unit keeps its own copy compiled with its own ISA flags: no definition is
// ever shared between files built with different -m flags.
//
// The traits API (the same names in vec_avx512.hpp):
//   V, Mask, width                      vector type, lane-mask type, lanes
//   load / store (unaligned), zero, set1
//   add sub mul min max                 min/max return their second operand when either is NaN
//   fmadd(a, b, c) = a·b + c, fmsub = a·b − c, fnmadd = c − a·b (fused, one rounding)
//   round_nearest, abs, sign_bits (x & −0), or_bits
//   lt(a, b) (ordered), nge(a, b) (!(a >= b), true on NaN)
//   blend(m, a, b) = m ? b : a; zero_unless(m, v) = m ? v : 0; first_n(j0, n): lanes j0 + i < n
//   scale_pow2(p, n) = p·2^n for integral n in [-151, 129], as two exact power-of-two factors
//   reduce_add / reduce_max: fixed pairwise order (halves, then quarters, ...); lane0
#include <cstdint>

#include "kernels/simd/x86.hpp"

namespace tern::simd {
namespace {

struct F32x8 {
  using V = __m256;
  using Mask = __m256;
  static constexpr int width = 8;

  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }

  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fmsub(V a, V b, V c) { return _mm256_fmsub_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }

  static V round_nearest(V x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static V abs(V x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), x); }
  static V sign_bits(V x) { return _mm256_and_ps(x, _mm256_set1_ps(-0.f)); }
  static V or_bits(V a, V b) { return _mm256_or_ps(a, b); }

  static Mask lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static Mask nge(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_NGE_UQ); }
  static V blend(Mask m, V a, V b) { return _mm256_blendv_ps(a, b, m); }
  static V zero_unless(Mask m, V v) { return _mm256_and_ps(v, m); }
  static Mask first_n(int64_t j0, int64_t n) {
    const __m256 idx = _mm256_add_ps(_mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7),
                                     _mm256_set1_ps(static_cast<float>(j0)));
    return _mm256_cmp_ps(idx, _mm256_set1_ps(static_cast<float>(n)), _CMP_LT_OQ);
  }

  static V scale_pow2(V p, V n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  }

  static float reduce_add(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_max(V v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static float lane0(V v) { return _mm256_cvtss_f32(v); }
};

}  // namespace
}  // namespace tern::simd
