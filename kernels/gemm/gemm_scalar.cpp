// Portable microkernels: f32_gemm_{1..4}x8, plain C++ (no ISA flags; the compiler may use the
// baseline SSE2 of x86-64). The fallback on CPUs without AVX2. Contract: gemm_config.hpp.
#include <algorithm>
#include <cmath>

#include "kernels/gemm/gemm_config.hpp"

namespace tern::gemm {
namespace {

constexpr int kMr = 4, kNr = 8;

inline float activate(float v, Activation act) {
  switch (act) {
    case Activation::none: return v;
    case Activation::relu: return v < 0.f ? 0.f : v;  // NaN stays NaN, as torch.relu
    case Activation::gelu: return 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f));
    case Activation::quick_gelu: return v / (1.f + std::exp(-1.702f * v));
  }
  return v;
}

template <int R>
void f32_gemm_x8__scalar(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                         int64_t ldc, int64_t nr, const float* init, int64_t ldi, const float* bias,
                         Activation act, const float* /*prefetch: a hint the scalar kernel ignores*/) {
  float acc[R][kNr];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < kNr; ++j) acc[r][j] = 0.f;
  for (int64_t k = 0; k < kc; ++k) {
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < kNr; ++j) acc[r][j] += a[r * lda] * b[j];
    ++a;
    b += kNr;
  }
  const int n = static_cast<int>(std::min<int64_t>(nr, kNr));
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < n; ++j) {
      float v = acc[r][j];
      if (init) v += init[r * ldi + j];
      if (bias) v += bias[j];
      c[r * ldc + j] = activate(v, act);
    }
}

const GemmConfig kConfig = {
    Isa::scalar,
    kMr,
    kNr,
    /*kc=*/256,
    /*mc=*/128,
    /*nc=*/1024,
    {f32_gemm_x8__scalar<1>, f32_gemm_x8__scalar<2>, f32_gemm_x8__scalar<3>,
     f32_gemm_x8__scalar<4>},
    "f32_gemm_4x8__scalar",
};

}  // namespace

const GemmConfig& gemm_config_scalar() { return kConfig; }

}  // namespace tern::gemm
