#pragma once
// Vector exp / erf / GELU on 8 floats (AVX2 + FMA). Include only from *_avx2.cpp files.
// Algorithms and accuracy: vec_math_coeffs.hpp. NaN in gives NaN out. Functions are static so each
// translation unit keeps its own copy, compiled with its own ISA flags.
#include "kernels/math/vec_math_coeffs.hpp"
#include "kernels/simd_x86.hpp"

namespace tern::vmath::avx2 {

template <int N>
static inline __m256 horner(__m256 x, const float (&c)[N]) {
  __m256 p = _mm256_set1_ps(c[0]);
  for (int i = 1; i < N; ++i) p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(c[i]));
  return p;
}

static inline __m256 exp(__m256 x) {
  // max/min return their second operand when either is NaN: NaN passes through.
  x = _mm256_min_ps(_mm256_set1_ps(kExpMaxX), _mm256_max_ps(_mm256_set1_ps(kExpMinX), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  const __m256 p = horner(r, kExpTaylor);
  // 2^n as two factors 2^(n/2) · 2^(n - n/2), each a normal float for n in [-151, 129].
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// erfc(z) for z in [kErfSplit, inf): 0 from kErfTailEnd on.
static inline __m256 erfc_tail(__m256 z) {
  const __m256 zc = _mm256_min_ps(_mm256_set1_ps(kErfTailEnd), z);
  const __m256 hi = _mm256_mul_ps(zc, zc);
  const __m256 lo = _mm256_fmsub_ps(zc, zc, hi);
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 e = _mm256_mul_ps(exp(_mm256_sub_ps(_mm256_setzero_ps(), hi)), _mm256_sub_ps(one, lo));
  const __m256 g = horner(_mm256_sub_ps(zc, _mm256_set1_ps(kErfcCenter)), kErfcTail);
  const __m256 in_range = _mm256_cmp_ps(z, _mm256_set1_ps(kErfTailEnd), _CMP_NGE_UQ);  // z < end or NaN
  return _mm256_and_ps(_mm256_mul_ps(e, g), in_range);
}

static inline __m256 abs(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.f), x); }

static inline __m256 erf(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
  const __m256 a = abs(x);
  const __m256 small = _mm256_mul_ps(x, horner(_mm256_mul_ps(x, x), kErfSmall));
  const __m256 big = _mm256_or_ps(sign, _mm256_sub_ps(_mm256_set1_ps(1.f), erfc_tail(a)));
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(kErfSplit), _CMP_LT_OQ));
}

// 0.5·x·(1 + erf(x/√2))
static inline __m256 gelu(__m256 x) {
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(kInvSqrt2));
  const __m256 a = abs(z);
  const __m256 phi_small = _mm256_fmadd_ps(_mm256_mul_ps(z, horner(_mm256_mul_ps(z, z), kErfSmall)),
                                           half, half);
  const __m256 half_erfc = _mm256_mul_ps(half, erfc_tail(a));
  const __m256 phi_big = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.f), half_erfc), half_erfc,
                                          _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
  const __m256 phi =
      _mm256_blendv_ps(phi_big, phi_small, _mm256_cmp_ps(a, _mm256_set1_ps(kErfSplit), _CMP_LT_OQ));
  return _mm256_mul_ps(x, phi);
}

}  // namespace tern::vmath::avx2
