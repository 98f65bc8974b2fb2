// AVX-512 microkernels: f32_gemm_{1..12}x32. Contract and layouts: gemm_config.hpp.
// 12 × 32 tile (as MLAS): 24 accumulators + 2 B vectors + 1 broadcast = 27 of the 32 zmm
// registers; per k, 2 loads of B and 12 broadcasts feed 24 FMAs, enough independent chains to
// cover the FMA latency on two 512-bit pipes (Zen 5, Sapphire Rapids).
// Blocking, measured on Zen 5 (bench/gemm_ab, 1 and 2 threads, alternating): kc = 1024 (K up to
// 1024 in one block, the transformers' 768 included) and mc = 72 beat kc = 256 / mc = 144 by about
// 5 points of peak on average, most on long K (128x768x3072: 71% -> 85% on 1 thread) and large
// squares; kc 384/512/768 fell in between. The kc x 32 B slice (up to 128 KiB) streams from L2,
// which Zen 5 feeds fast enough for 2 loads per 24 FMAs; fewer K blocks mean fewer passes over C.

#include "kernels/gemm/gemm_config.hpp"
#include "kernels/simd/vec_avx512.hpp"
#include "kernels/simd/x86.hpp"
#include "kernels/vmath/vec_math_impl.hpp"

namespace tern::gemm {
namespace {

constexpr int kMr = 12, kNr = 32;

inline __mmask16 lane_mask(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// Masked tail loads/stores. SIMDe 0.7.4 lacks _mm512_maskz_loadu_ps / _mm512_mask_storeu_ps, so
// the emulated build goes through a stack buffer (same values, no out-of-bounds access either way).
inline __m512 load_tail(const float* p, int64_t n) {
#if defined(TERN_EMULATE_AVX512)
  alignas(64) float buf[16] = {};
  for (int64_t i = 0; i < n && i < 16; ++i) buf[i] = p[i];
  return _mm512_load_ps(buf);
#else
  return _mm512_maskz_loadu_ps(lane_mask(n), p);
#endif
}

inline void store_tail(float* p, int64_t n, __m512 v) {
#if defined(TERN_EMULATE_AVX512)
  alignas(64) float buf[16];
  _mm512_store_ps(buf, v);
  for (int64_t i = 0; i < n && i < 16; ++i) p[i] = buf[i];
#else
  _mm512_mask_storeu_ps(p, lane_mask(n), v);
#endif
}

inline __m512 activate(__m512 v, Activation act) {
  switch (act) {
    case Activation::none: return v;
    case Activation::relu: return _mm512_max_ps(_mm512_setzero_ps(), v);  // maxps returns v if NaN
    case Activation::gelu: return vmath::impl::gelu<simd::F32x16>(v);
    case Activation::quick_gelu:  // v / (1 + exp(-1.702 v)); exp clamps, so no inf / inf
      return _mm512_div_ps(
          v, _mm512_add_ps(_mm512_set1_ps(1.f), vmath::impl::exp<simd::F32x16>(
                                                    _mm512_mul_ps(v, _mm512_set1_ps(-1.702f)))));
  }
  return v;
}

template <int R>
void f32_gemm_x32__avx512f(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                           int64_t ldc, int64_t nr, const float* init, int64_t ldi,
                           const float* bias, Activation act, const float* prefetch) {
  const bool full = nr == kNr;
  const int64_t n1 = nr - 16;
  // The tile of C (or of init) is added after the K loop: prefetch it now so it is in L1 by then.
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const float* row = init ? init + r * ldi : c + r * ldc;
    _mm_prefetch(reinterpret_cast<const char*>(row), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(row + kNr - 1), _MM_HINT_T0);
  }
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  // One step of k: two vectors of B, R broadcasts of A, 2·R FMAs.
  auto step = [&]() __attribute__((always_inline)) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
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
        acc0[r] = _mm512_add_ps(acc0[r], _mm512_loadu_ps(init + r * ldi));
        acc1[r] = _mm512_add_ps(acc1[r], _mm512_loadu_ps(init + r * ldi + 16));
      } else {
        acc0[r] = _mm512_add_ps(acc0[r], load_tail(init + r * ldi, nr));
        if (n1 > 0) acc1[r] = _mm512_add_ps(acc1[r], load_tail(init + r * ldi + 16, n1));
      }
    }
  }
  if (bias) {
    const __m512 bias0 = full ? _mm512_loadu_ps(bias) : load_tail(bias, nr);
    const __m512 bias1 = full ? _mm512_loadu_ps(bias + 16)
                              : (n1 > 0 ? load_tail(bias + 16, n1) : _mm512_setzero_ps());
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_add_ps(acc0[r], bias0);
      acc1[r] = _mm512_add_ps(acc1[r], bias1);
    }
  }
  // ReLU on the accumulators as they are stored (maxps returns its second operand, the value, if
  // it is NaN, as torch.relu); other activations in a second pass below.
  const bool relu = act == Activation::relu;
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (relu) {
      acc0[r] = _mm512_max_ps(_mm512_setzero_ps(), acc0[r]);
      acc1[r] = _mm512_max_ps(_mm512_setzero_ps(), acc1[r]);
    }
    if (full) {
      _mm512_storeu_ps(c + r * ldc, acc0[r]);
      _mm512_storeu_ps(c + r * ldc + 16, acc1[r]);
    } else {
      store_tail(c + r * ldc, nr, acc0[r]);
      if (n1 > 0) store_tail(c + r * ldc + 16, n1, acc1[r]);
    }
  }
  // GELU as a second pass over the tile just stored (in L1): keeps the accumulator arrays out of
  // any loop the compiler does not unroll, so they stay in registers.
  if (act != Activation::none && !relu) {
    for (int r = 0; r < R; ++r) {
      float* row = c + r * ldc;
      if (full) {
        _mm512_storeu_ps(row, activate(_mm512_loadu_ps(row), act));
        _mm512_storeu_ps(row + 16, activate(_mm512_loadu_ps(row + 16), act));
      } else {
        store_tail(row, nr, activate(load_tail(row, nr), act));
        if (n1 > 0) store_tail(row + 16, n1, activate(load_tail(row + 16, n1), act));
      }
    }
  }
}

const GemmConfig kConfig = {
    Isa::avx512,
    kMr,
    kNr,
    /*kc=*/1024,
    /*mc=*/72,
    /*nc=*/4096,
    {f32_gemm_x32__avx512f<1>, f32_gemm_x32__avx512f<2>, f32_gemm_x32__avx512f<3>,
     f32_gemm_x32__avx512f<4>, f32_gemm_x32__avx512f<5>, f32_gemm_x32__avx512f<6>,
     f32_gemm_x32__avx512f<7>, f32_gemm_x32__avx512f<8>, f32_gemm_x32__avx512f<9>,
     f32_gemm_x32__avx512f<10>, f32_gemm_x32__avx512f<11>, f32_gemm_x32__avx512f<12>},
    "f32_gemm_12x32__avx512f",
};

}  // namespace

const GemmConfig& gemm_config_avx512() { return kConfig; }

}  // namespace tern::gemm
