#pragma once
// Pooling on NHWC activations, vectorised over channels.
//
//   max_pool2d_nhwc:     x [N, H, W, C] -> y [N, OH, OW, C], OH = (H + 2·pad − k) / stride + 1
//                        (floor, PyTorch's ceil_mode=False). Padding never wins: the max is over
//                        the taps inside the image, as with PyTorch's −inf padding. Requires
//                        pad < kernel so every window holds at least one tap, and OH, OW >= 1.
//   global_avg_pool_nhwc: x [N, HW, C] -> y [N, C], the mean over HW, summed in pixel order.
// Per-channel arithmetic is the same sequence of operations on every ISA, so results are
// bit-identical across ISAs and thread counts. Dense tensors; kernels read nothing outside them.
// Variants per ISA: pool_config.hpp.
#include <cstdint>

#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern::pool {

struct PoolParams {
  int64_t kernel = 3, stride = 2, pad = 1;
};

inline int64_t pool_out_size(int64_t in, const PoolParams& p) {
  const int64_t span = in + 2 * p.pad - p.kernel;
  return span < 0 ? 0 : span / p.stride + 1;
}

void max_pool2d_nhwc(Isa isa, Parallel* par, const PoolParams& p, int64_t N, int64_t H, int64_t W,
                     int64_t C, const float* x, float* y);
void global_avg_pool_nhwc(Isa isa, Parallel* par, int64_t N, int64_t HW, int64_t C, const float* x,
                          float* y);

// Oracles in PyTorch's layout: x [N, C, H, W].
void max_pool2d_reference_nchw(const PoolParams& p, int64_t N, int64_t C, int64_t H, int64_t W,
                               const float* x, float* y);
void global_avg_pool_reference_nchw(int64_t N, int64_t C, int64_t HW, const float* x, float* y);

}  // namespace tern::pool
