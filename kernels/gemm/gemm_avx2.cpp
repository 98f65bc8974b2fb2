// AVX2 + FMA microkernels: f32_gemm_{1..6}x16. Contract and layouts: gemm_config.hpp.
// 6 × 16 tile: 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers; per k,
// 2 loads of B and 6 broadcasts feed 12 FMAs (Zen 3 / Haswell: 2 FMA + 2-3 loads per cycle).
#include "kernels/gemm/gemm_config.hpp"
#include "kernels/simd/vec_avx2.hpp"
#include "kernels/simd/x86.hpp"
#include "kernels/vmath/vec_math_impl.hpp"

namespace tern::gemm {
namespace {

constexpr int kMr = 6, kNr = 16;

inline __m256i lane_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline __m256 activate(__m256 v, Activation act) {
  switch (act) {
    case Activation::none: return v;
    case Activation::relu: return _mm256_max_ps(_mm256_setzero_ps(), v);  // maxps returns v if NaN
    case Activation::gelu: return vmath::impl::gelu<simd::F32x8>(v);
    case Activation::quick_gelu:  // v / (1 + exp(-1.702 v)); exp clamps, so no inf / inf
      return _mm256_div_ps(
          v, _mm256_add_ps(_mm256_set1_ps(1.f), vmath::impl::exp<simd::F32x8>(
                                                    _mm256_mul_ps(v, _mm256_set1_ps(-1.702f)))));
  }
  return v;
}

template <int R>
void f32_gemm_x16__avx2_fma(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                            int64_t ldc, int64_t nr, const float* init, int64_t ldi,
                            const float* bias, Activation act, const float* prefetch) {
  const bool full = nr == kNr;
  const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
  // The tile of C (or of init) is added after the K loop: prefetch it now so it is in L1 by then.
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const float* row = init ? init + r * ldi : c + r * ldc;
    _mm_prefetch(reinterpret_cast<const char*>(row), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(row + kNr - 1), _MM_HINT_T0);
  }
  __m256 acc0[R], acc1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  // One step of k: two vectors of B, R broadcasts of A, 2·R FMAs.
  auto step = [&]() __attribute__((always_inline)) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
    ++a;
    b += kNr;
  };
  int64_t k = 0;
  if (prefetch)
    for (; k + 4 <= kc; k += 4) {
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * 16), _MM_HINT_T1);  // line k
      step();
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * 16 + 16), _MM_HINT_T1);
      step();
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * 16 + 32), _MM_HINT_T1);
      step();
      _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * 16 + 48), _MM_HINT_T1);
      step();
    }
#pragma GCC unroll 4
  for (; k < kc; ++k) step();
  if (init) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      if (full) {
        acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(init + r * ldi));
        acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(init + r * ldi + 8));
      } else {
        acc0[r] = _mm256_add_ps(acc0[r], _mm256_maskload_ps(init + r * ldi, m0));
        acc1[r] = _mm256_add_ps(acc1[r], _mm256_maskload_ps(init + r * ldi + 8, m1));
      }
    }
  }
  if (bias) {
    const __m256 bias0 = full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0);
    const __m256 bias1 = full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm256_add_ps(acc0[r], bias0);
      acc1[r] = _mm256_add_ps(acc1[r], bias1);
    }
  }
  // ReLU on the accumulators as they are stored (maxps returns its second operand, the value, if
  // it is NaN, as torch.relu); other activations in a second pass below.
  const bool relu = act == Activation::relu;
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (relu) {
      acc0[r] = _mm256_max_ps(_mm256_setzero_ps(), acc0[r]);
      acc1[r] = _mm256_max_ps(_mm256_setzero_ps(), acc1[r]);
    }
    if (full) {
      _mm256_storeu_ps(c + r * ldc, acc0[r]);
      _mm256_storeu_ps(c + r * ldc + 8, acc1[r]);
    } else {
      _mm256_maskstore_ps(c + r * ldc, m0, acc0[r]);
      _mm256_maskstore_ps(c + r * ldc + 8, m1, acc1[r]);
    }
  }
  // GELU as a second pass over the tile just stored (in L1): keeps the accumulator arrays out of
  // any loop the compiler does not unroll, so they stay in registers.
  if (act != Activation::none && !relu) {
    for (int r = 0; r < R; ++r) {
      float* row = c + r * ldc;
      if (full) {
        _mm256_storeu_ps(row, activate(_mm256_loadu_ps(row), act));
        _mm256_storeu_ps(row + 8, activate(_mm256_loadu_ps(row + 8), act));
      } else {
        _mm256_maskstore_ps(row, m0, activate(_mm256_maskload_ps(row, m0), act));
        _mm256_maskstore_ps(row + 8, m1, activate(_mm256_maskload_ps(row + 8, m1), act));
      }
    }
  }
}

const GemmConfig kConfig = {
    Isa::avx2,
    kMr,
    kNr,
    /*kc=*/256,
    /*mc=*/72,
    /*nc=*/4096,
    {f32_gemm_x16__avx2_fma<1>, f32_gemm_x16__avx2_fma<2>, f32_gemm_x16__avx2_fma<3>,
     f32_gemm_x16__avx2_fma<4>, f32_gemm_x16__avx2_fma<5>, f32_gemm_x16__avx2_fma<6>},
    "f32_gemm_6x16__avx2_fma",
};

}  // namespace

const GemmConfig& gemm_config_avx2() { return kConfig; }

}  // namespace tern::gemm
