#pragma once
// Per-ISA GEMM microkernels and their blocking parameters (internal to kernels/gemm, exposed for
// tests and benchmarks).
//
// Packed B layout ([K block][panel][k][NR]): K is cut into the blocks the GEMM sums in (kc from the
// config, evened out over K), B into column panels of NR columns (columns past N zero-filled).
// The kc × NR slice a microkernel reads (panel p, block [k0, k0 + kcb)) is contiguous at
// data + k0·round_up(N, NR) + p·kcb·NR, and the slices of consecutive panels follow each other,
// so the GEMM reads each K block of B as one sequential stream.
// A is not packed: the microkernel broadcasts its elements straight from the rows of A (as MLAS
// and XNNPACK do). Measured on Zen 3 (AVX2), this beat copying each MC × KC block of A into
// [k][mr] panels first: the copy costs more than it saves whenever B has few column panels, and
// the row streams prefetch well.
//
// Microkernel contract, ukernel[mr - 1] for 1 <= mr <= MR, 0 <= nr <= NR, kc >= 0:
//   for r < mr, j < nr:  s = Σ_k a[r·lda + k] · b[k·NR + j]   (from 0, one multiply-add per k in
//                        k order, fused on AVX2 / AVX-512; the same for every mr, so a row's
//                        result never depends on which panel it falls in: batching and thread
//                        counts do not change any bit)
//                        c[r·ldc + j] = act(s + (init ? init[r·ldi + j] : 0) + (bias ? bias[j] : 0))
//   It reads b[0 .. kc·NR) fully, a[r·lda + k] for r < mr, k < kc, and of c / init / bias only the
//   mr × nr elements above (masked loads and stores on the column tail): nothing out of bounds.
//   init may equal c (continuing a K block, or a residual aliasing C). The K sum starts from zero
//   and init is added after it, so the tile of C is only touched (prefetched first) at the end.
//   prefetch: null, or memory the caller will read next (B's next column panel); the vector
//   kernels fetch its first 4·⌊kc / 4⌋ cache lines (prefetch + 16·i) into L2 while their K loop
//   runs, one line per step of k. A hint only: never dereferenced, results unchanged.
#include <cstdint>

#include "kernels/gemm/gemm.hpp"

namespace tern::gemm {

using UkernelFn = void (*)(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                           int64_t ldc, int64_t nr, const float* init, int64_t ldi,
                           const float* bias, Activation act, const float* prefetch);

inline constexpr int kMaxMr = 16;

struct GemmConfig {
  Isa isa;
  int mr, nr;          // register tile
  int kc, mc, nc;      // cache blocking: K block, rows of A per L2 block, columns per L3 block
  UkernelFn ukernel[kMaxMr];  // ukernel[mr - 1]
  const char* name;    // e.g. "f32_gemm_6x16__avx2_fma"
};

const GemmConfig& gemm_config(Isa isa);
const GemmConfig& gemm_config_scalar();
const GemmConfig& gemm_config_avx2();
const GemmConfig& gemm_config_avx512();

}  // namespace tern::gemm
