#pragma once
// Per-ISA GEMM microkernels and their blocking parameters (internal to kernels/gemm, exposed for
// tests and benchmarks).
//
// Packed B layout ([panel][K][NR]): B is cut into column panels of NR columns; panel p holds
// B[k, p·NR + j] at data[(p·K + k)·NR + j], columns past N zero-filled. So the kc × NR slice a
// microkernel reads for k-block [k0, k0 + kc) is contiguous at data + (p·K + k0)·NR.
// Packed A (built per call, per MC × KC block): row panels of mr <= MR rows, panel layout [kc][mr]
// (a[k·mr + r] = A[r, k]); the last panel of a block holds the leftover rows, no padding.
//
// Microkernel contract, ukernel[mr - 1] for 1 <= mr <= MR, 0 <= nr <= NR, kc >= 0:
//   for r < mr, j < nr:  acc = (init ? init[r·ldi + j] : 0) + Σ_k a[k·mr + r] · b[k·NR + j]
//                        (one multiply-add per k, in k order; fused on AVX2 / AVX-512)
//                        c[r·ldc + j] = act(acc + (bias ? bias[j] : 0))
//   It reads b[0 .. kc·NR) and a[0 .. kc·mr) fully, and of c / init / bias only the mr × nr
//   elements above (masked loads and stores on the column tail): nothing out of bounds.
//   init may equal c (continuing a K block, or a residual aliasing C).
#include <cstdint>

#include "kernels/gemm/gemm.hpp"

namespace tern::gemm {

using UkernelFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                           int64_t nr, const float* init, int64_t ldi, const float* bias,
                           Activation act);

inline constexpr int kMaxMr = 16;

struct GemmConfig {
  Isa isa;
  int mr, nr;          // register tile
  int kc, mc, nc;      // cache blocking: K block, rows of C per task, max columns of C per task
  UkernelFn ukernel[kMaxMr];  // ukernel[mr - 1]
  const char* name;    // e.g. "f32_gemm_6x16__avx2_fma"
};

const GemmConfig& gemm_config(Isa isa);
const GemmConfig& gemm_config_scalar();
const GemmConfig& gemm_config_avx2();
const GemmConfig& gemm_config_avx512();

}  // namespace tern::gemm
