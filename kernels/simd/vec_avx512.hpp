#pragma once
// Vector traits for AVX-512F/DQ: 16 floats in a __m512, lane masks as __mmask16. The same API as
// F32x8 (vec_avx2.hpp, where it is described); instantiated in *_avx512.cpp files only, internal
// linkage for the same reason. Only intrinsics SIMDe 0.7.4 implements are used, so the emulated
// test build (TERN_EMULATE_AVX512) runs the same bodies: no _mm512_reduce_*, no masked
// loads/stores.
#include <cstdint>

#include "kernels/simd/x86.hpp"

namespace tern::simd {
namespace {

struct F32x16 {
  using V = __m512;
  using Mask = __mmask16;
  static constexpr int width = 16;

  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }

  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fmsub(V a, V b, V c) { return _mm512_fmsub_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }

  static V round_nearest(V x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static V abs(V x) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
  }
  static V sign_bits(V x) {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int(0x80000000u))));
  }
  static V or_bits(V a, V b) {
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }

  static Mask lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static Mask nge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_NGE_UQ); }
  static V blend(Mask m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
  static V zero_unless(Mask m, V v) { return _mm512_maskz_mov_ps(m, v); }
  static Mask first_n(int64_t j0, int64_t n) {
    const int64_t left = n - j0;
    if (left >= 16) return static_cast<__mmask16>(0xFFFF);
    if (left <= 0) return 0;
    return static_cast<__mmask16>((1u << left) - 1u);
  }

  // p·2^n as two scalef steps of about n/2 each: no intermediate 2^128 or subnormal, on hardware
  // or in emulation; the final step rounds overflow to inf and underflow towards 0.
  static V scale_pow2(V p, V n) {
    const __m512 shifter = _mm512_set1_ps(12582912.f);  // 1.5·2^23: rounds to an integer
    const __m512 n1 = _mm512_sub_ps(_mm512_fmadd_ps(n, _mm512_set1_ps(0.5f), shifter), shifter);
    const __m512 n2 = _mm512_sub_ps(n, n1);
    return _mm512_scalef_ps(_mm512_scalef_ps(p, n1), n2);
  }

  static float reduce_add(V v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), hi256(v));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_max(V v) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), hi256(v));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static float lane0(V v) {
    alignas(64) float out[16];
    _mm512_store_ps(out, v);
    return out[0];
  }

  static __m256 hi256(V v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  }
};

}  // namespace
}  // namespace tern::simd
