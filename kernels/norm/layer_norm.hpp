#pragma once
// LayerNorm over the last dimension, one row at a time:
//   y[r, c] = (x[r, c] - mean_r) / sqrt(var_r + eps) * gamma[c] + beta[c]
// var_r is the biased variance (divide by dim), as torch.nn.LayerNorm.
//
// Shapes and strides (in elements): x is [rows, dim] with row stride ldx >= dim; y is [rows, dim]
// with row stride ldy >= dim; gamma and beta are [dim]. Any dim >= 1, no alignment required, and
// nothing outside the described rows is read or written. In-place use is allowed: y == x with
// ldy == ldx (a row's statistics are complete before any of it is written); any other overlap is
// not.
//
// Statistics take one pass over the row: sums of (x - shift) and (x - shift)^2 with shift = the
// row's first element, so the variance keeps its precision when |mean| is large against the
// spread. fp32 lane accumulators are combined in a fixed order, and rows are independent tasks in
// fixed blocks: results are bit-identical for any thread count. Variants per ISA:
// layer_norm_config.hpp.
#include <cstdint>

#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern::norm {

void layer_norm(Isa isa, Parallel* par, int64_t rows, int64_t dim, const float* x, int64_t ldx,
                const float* gamma, const float* beta, float eps, float* y, int64_t ldy);

// The oracle: two passes per row in double precision.
void layer_norm_reference(int64_t rows, int64_t dim, const float* x, int64_t ldx,
                          const float* gamma, const float* beta, float eps, float* y, int64_t ldy);

}  // namespace tern::norm
