#pragma once
// Vector exp / erf / GELU on 16 floats (AVX-512F/DQ). Include only from *_avx512.cpp files.
// Algorithms and accuracy: vec_math_coeffs.hpp; same polynomials as vec_math_avx2.hpp. NaN in gives
// NaN out. Functions are static so each translation unit keeps its own copy.
#include "kernels/math/vec_math_coeffs.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::vmath::avx512 {

template <int N>
static inline __m512 horner(__m512 x, const float (&c)[N]) {
  __m512 p = _mm512_set1_ps(c[0]);
  for (int i = 1; i < N; ++i) p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(c[i]));
  return p;
}

static inline __m512 exp(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(kExpMaxX), _mm512_max_ps(_mm512_set1_ps(kExpMinX), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  // p · 2^n as two scalef steps of n/2 each: no intermediate 2^128 or subnormal, on hardware or in
  // emulation; the final step rounds overflow to inf and underflow towards 0.
  const __m512 shifter = _mm512_set1_ps(12582912.f);  // 1.5·2^23: rounds to an integer
  const __m512 n1 = _mm512_sub_ps(_mm512_fmadd_ps(n, _mm512_set1_ps(0.5f), shifter), shifter);
  const __m512 n2 = _mm512_sub_ps(n, n1);
  return _mm512_scalef_ps(_mm512_scalef_ps(horner(r, kExpTaylor), n1), n2);
}

static inline __m512 abs(__m512 x) {
  return _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

// erfc(z) for z in [kErfSplit, inf): 0 from kErfTailEnd on.
static inline __m512 erfc_tail(__m512 z) {
  const __m512 zc = _mm512_min_ps(_mm512_set1_ps(kErfTailEnd), z);
  const __m512 hi = _mm512_mul_ps(zc, zc);
  const __m512 lo = _mm512_fmsub_ps(zc, zc, hi);
  const __m512 e = _mm512_mul_ps(exp(_mm512_sub_ps(_mm512_setzero_ps(), hi)),
                                 _mm512_sub_ps(_mm512_set1_ps(1.f), lo));
  const __m512 g = horner(_mm512_sub_ps(zc, _mm512_set1_ps(kErfcCenter)), kErfcTail);
  const __mmask16 in_range = _mm512_cmp_ps_mask(z, _mm512_set1_ps(kErfTailEnd), _CMP_NGE_UQ);
  return _mm512_maskz_mov_ps(in_range, _mm512_mul_ps(e, g));
}

static inline __m512 erf(__m512 x) {
  const __m512 a = abs(x);
  const __m512 small = _mm512_mul_ps(x, horner(_mm512_mul_ps(x, x), kErfSmall));
  const __m512 big_abs = _mm512_sub_ps(_mm512_set1_ps(1.f), erfc_tail(a));
  const __m512 big = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_castps_si512(big_abs),
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int(0x80000000u)))));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(kErfSplit), _CMP_LT_OQ), big,
                              small);
}

// 0.5·x·(1 + erf(x/√2))
static inline __m512 gelu(__m512 x) {
  const __m512 half = _mm512_set1_ps(0.5f);
  const __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(kInvSqrt2));
  const __m512 a = abs(z);
  const __m512 phi_small =
      _mm512_fmadd_ps(_mm512_mul_ps(z, horner(_mm512_mul_ps(z, z), kErfSmall)), half, half);
  const __m512 half_erfc = _mm512_mul_ps(half, erfc_tail(a));
  const __m512 phi_big =
      _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ),
                           _mm512_sub_ps(_mm512_set1_ps(1.f), half_erfc), half_erfc);
  const __m512 phi = _mm512_mask_blend_ps(
      _mm512_cmp_ps_mask(a, _mm512_set1_ps(kErfSplit), _CMP_LT_OQ), phi_big, phi_small);
  return _mm512_mul_ps(x, phi);
}

}  // namespace tern::vmath::avx512
