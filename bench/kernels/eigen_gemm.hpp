#pragma once
// Eigen's GEMM as the baseline of the kernel benchmark (eigen_gemm_avx2.cpp).
#include <cstdint>
#include <functional>

namespace tern::bench {

// A callable that computes C = A·B with Eigen on its own random row-major M×K and K×N matrices.
// Compiled with AVX2 + FMA: call only where the CPU has them.
std::function<void()> eigen_gemm_runner(int64_t M, int64_t N, int64_t K);

}  // namespace tern::bench
