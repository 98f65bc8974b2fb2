// Interim implementation: every ISA runs the reference. Replaced by packed microkernels.
#include "kernels/gemm/gemm.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace tern::gemm {

PackedB::PackedB() = default;
PackedB::~PackedB() = default;
PackedB::PackedB(PackedB&&) noexcept = default;
PackedB& PackedB::operator=(PackedB&&) noexcept = default;

PackedB PackedB::pack(Isa isa, const float* b, int64_t K, int64_t N, int64_t ldb, bool b_is_nk) {
  PackedB p;
  p.isa_ = isa;
  p.K_ = K;
  p.N_ = N;
  p.bytes_ = static_cast<size_t>(K * N) * sizeof(float);
  p.data_ = std::shared_ptr<float>(static_cast<float*>(std::malloc(p.bytes_ + 64)), std::free);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) p.data_.get()[k * N + n] = b_is_nk ? b[n * ldb + k] : b[k * ldb + n];
  return p;
}

static float apply(float x, Activation act) {
  switch (act) {
    case Activation::none: return x;
    case Activation::relu: return x > 0.f ? x : 0.f;
    case Activation::gelu: return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
  }
  return x;
}

void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                    int64_t ldb, bool b_is_nk, float* C, int64_t ldc, const Epilogue& ep) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(A[m * lda + k]) * double(b_is_nk ? B[n * ldb + k] : B[k * ldb + n]);
      float v = static_cast<float>(acc);
      if (ep.bias) v += ep.bias[n];
      if (ep.residual) v += ep.residual[m * ep.ldr + n];
      C[m * ldc + n] = apply(v, ep.act);
    }
}

void gemm(Parallel* par, int64_t M, const float* A, int64_t lda, const PackedB& B, float* C,
          int64_t ldc, const Epilogue& ep) {
  parallel_for(par, M, [&](int64_t m) {
    gemm_reference(1, B.N(), B.K(), A + m * lda, lda, B.data(), B.N(), false, C + m * ldc, ldc,
                   Epilogue{ep.bias, ep.residual ? ep.residual + m * ep.ldr : nullptr, ep.ldr, ep.act});
  });
}

void gemm_unpacked(Isa, Parallel* par, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                   const float* B, int64_t ldb, bool b_is_nk, float* C, int64_t ldc, const Epilogue& ep) {
  parallel_for(par, M, [&](int64_t m) {
    gemm_reference(1, N, K, A + m * lda, lda, B, ldb, b_is_nk, C + m * ldc, ldc,
                   Epilogue{ep.bias, ep.residual ? ep.residual + m * ep.ldr : nullptr, ep.ldr, ep.act});
  });
}

}  // namespace tern::gemm
