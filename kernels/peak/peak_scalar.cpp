#include "kernels/peak/peak_config.hpp"

namespace tern::peak {
namespace {

// 12 independent chains of 4-wide multiply-adds: the portable build has no FMA instruction but
// the compiler packs these into the baseline SSE registers, as it does for the scalar GEMM
// microkernels, so this is the peak the scalar level can reach.
int64_t f32_fma_loop_12x4__scalar(int64_t iters, float* sink) {
  constexpr int kAcc = 12, kLanes = 4;
  float acc[kAcc][kLanes];
  for (int i = 0; i < kAcc; ++i)
    for (int j = 0; j < kLanes; ++j) acc[i][j] = 0.001f * float(i + j);
  const float m = 0.999999f, a = 1e-6f;
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < kAcc; ++i)
      for (int j = 0; j < kLanes; ++j) acc[i][j] = acc[i][j] * m + a;
  float s = 0;
  for (int i = 0; i < kAcc; ++i)
    for (int j = 0; j < kLanes; ++j) s += acc[i][j];
  *sink = s;
  return iters * kAcc * kLanes * 2;
}

const PeakConfig kConfig = {Isa::scalar, f32_fma_loop_12x4__scalar, "f32_fma_loop_12x4__scalar"};

}  // namespace

const PeakConfig& peak_config_scalar() {
  return kConfig;
}

}  // namespace tern::peak
