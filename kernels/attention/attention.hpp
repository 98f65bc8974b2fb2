#pragma once
// Multi-head scaled dot-product self-attention for encoder blocks:
//   out[b, t, h, :] = softmax_j(scale · <q[b,t,h,:], k[b,j,h,:]>  for j < key_length[b]) · v[b, :,
//   h, :]
//
// Layout (strides in elements). Sequence b, token t, head h, channel d of Q is at
//   q[b * seq_stride + t * ld + h * head_dim + d]
// and the same for k and v (each with its own ld) and out (ld_out, out_seq_stride): heads side by
// side in a row, which is what a fused QKV projection writes ([tokens, 3·heads·head_dim], with q,
// k, v pointing at column 0, D and 2D, ld = 3·D) and what the output projection reads
// ([tokens, heads·head_dim]). seq_stride is shared by q, k and v.
//
// Key padding mask: keys j >= key_lengths[b] take no part (key_lengths == nullptr: all seq_len
// keys are valid). Every query row 0..seq_len-1 is computed, including padded ones (they attend to
// the valid keys, as with PyTorch's key_padding_mask), unless query_rows picks one per sequence.
// A fully masked sequence (key_lengths[b] == 0) gives zero output rows: finite, never NaN.
//
// Causal mask (causal = true, decoder-style / CLIP's text tower): query t also ignores keys j > t,
// so it attends to keys j < min(key_length[b], t + 1). It composes with the padding mask and is
// applied in the ISA-independent tiling (attention.cpp), so every ISA honours it the same way.
//
// Numerics: flash-style. Per (sequence, head, block of kQueryBlock queries) the scores exist only
// as a [query block × key tile] tile in L1 (the key tile is per ISA: attention_config.hpp); the softmax is computed online over key tiles with a
// running max, so exp never sees a positive argument and nothing overflows. Kᵀ and V are packed
// once per (sequence, head) into per-call scratch.
//
// Threading: with enough heads to go round (batch·heads >= 4·threads) or short sequences (one
// query block), one pass of (sequence, head) tasks, each packing its head into its thread's
// scratch and running its query blocks; otherwise (sequence, head) tasks pack, then (sequence,
// head, query block) tasks compute. No value is reduced across tasks and a query block is
// computed the same way in either scheme, so results are bit-identical for any thread count.
// Scratch is grow-only per thread: no allocation per call once warm.
// Microkernels per ISA: attention_config.hpp.
// Nothing outside the described rows and heads is read; out must not overlap q, k or v.
#include <cstdint>

#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern::attention {

inline constexpr int64_t kQueryBlock = 32;

struct Params {
  int64_t batch = 0, seq_len = 0, heads = 0, head_dim = 0;
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t ld_q = 0, ld_k = 0, ld_v = 0;  // row (token) stride, >= heads * head_dim
  int64_t seq_stride = 0;                // q/k/v: elements between sequence b and b+1
  float* out = nullptr;
  int64_t ld_out = 0, out_seq_stride = 0;
  const int32_t* key_lengths = nullptr;  // [batch], each in [0, seq_len]; nullptr = all valid
  // Packed sequences of their own lengths (nullptr: the padded layout above). Sequence b is rows
  // offsets[b] .. offsets[b + 1] - 1 of q, k, v and out (row r at q + r·ld_q, ...), all its keys
  // valid; seq_len, seq_stride, out_seq_stride and key_lengths are then unused. [batch + 1],
  // non-decreasing. The results are those of one call per sequence.
  const int64_t* offsets = nullptr;
  float scale = 1.f;                     // usually 1/sqrt(head_dim)
  bool causal = false;                   // query t attends to keys j <= t only
  // One query per sequence (nullptr: every query row). Only query row query_rows[b] of sequence b
  // (0 <= it < the sequence's rows; ignored for a sequence without rows) is computed and only its
  // out row written, bit for bit as the full call computes it; all keys still count. For an
  // encoder's last block when the caller reads one token of it (the class token, CLIP's
  // end-of-text token).
  const int64_t* query_rows = nullptr;
};

void attention(Isa isa, Parallel* par, const Params& p);

// The oracle: scores materialised per query row, double precision, two-pass softmax.
void attention_reference(const Params& p);

}  // namespace tern::attention
