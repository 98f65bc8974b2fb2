#pragma once
// Pieces shared by the transformer encoders (DistilBERT, ViT): a linear layer, a LayerNorm, and
// one encoder block in its post-norm (BERT) and pre-norm (ViT) order. Canonical tensor names per
// block (docs/FORMAT.md), under a prefix "layers.N.":
//   attn.qkv.weight [3D, D]  rows q; k; v (each [D, D], heads side by side), attn.qkv.bias [3D]
//   attn.out.weight [D, D], attn.out.bias [D]
//   attn_norm.weight / .bias [D]   (DistilBERT sa_layer_norm, ViT ln_1)
//   mlp.fc1.weight [F, D], mlp.fc1.bias [F], mlp.fc2.weight [D, F], mlp.fc2.bias [D]
//   mlp_norm.weight / .bias [D]    (DistilBERT output_layer_norm, ViT ln_2)
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/scratch.hpp"
#include "engine/core/tensor.hpp"
#include "engine/core/weights.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern::transformer {

// y = x · Wᵀ + b with PyTorch's W [out, in], packed once.
struct Linear {
  gemm::PackedB w;
  Tensor b;  // [out]
  int64_t in = 0, out = 0;
};
Linear load_linear(const WeightFile& file, Isa isa, const std::string& name, int64_t out,
                   int64_t in);
// y[rows, out] = act(x[rows, in] · Wᵀ + b (+ residual[rows, out])), row strides = widths.
void linear(Parallel* par, const Linear& l, int64_t rows, const float* x, float* y,
            const float* residual = nullptr, gemm::Activation act = gemm::Activation::none);

struct Norm {
  Tensor gamma, beta;  // [dim]
  float eps = 1e-5f;
};
Norm load_norm(const WeightFile& file, const std::string& name, int64_t dim, float eps);
// y[rows, dim] = LayerNorm(x); y may be x.
void layer_norm(Isa isa, Parallel* par, const Norm& n, int64_t rows, int64_t dim, const float* x,
                float* y);

struct EncoderLayer {
  Linear qkv, out, fc1, fc2;
  Norm attn_norm, mlp_norm;
};

struct EncoderDims {
  int64_t dim = 0, heads = 0, hidden = 0;  // model width, attention heads, MLP width
};

EncoderLayer load_encoder_layer(const WeightFile& file, Isa isa, const std::string& prefix,
                                const EncoderDims& dims, float eps);

// Activations of one forward call, in one of two layouts:
//   padded: sequences of seq_len tokens, row-major [batch·seq_len, dim]; key_lengths [batch] valid
//           tokens per sequence (keys past it are masked), or null for all.
//   packed: offsets [batch + 1] non-null: sequence b is rows [offsets[b], offsets[b+1]) of
//           [offsets[batch], dim], every row a real token. The linear layers then cost the real
//           tokens only, and attention runs per sequence. A row's result is the same in both
//           layouts (the GEMM and LayerNorm compute each row alike whatever the row count).
struct EncoderInput {
  int64_t batch = 0, seq_len = 0;
  const int32_t* key_lengths = nullptr;
  const int64_t* offsets = nullptr;
  int64_t rows() const { return offsets ? offsets[batch] : batch * seq_len; }
  bool causal = false;  // token t attends to tokens <= t only (CLIP's text tower), either layout
};

// Scratch for one call, sized for batch·seq_len rows: uninitialised buffers from the scratch cache
// (engine/core/scratch.hpp).
struct EncoderScratch {
  ScratchBuffer qkv, ctx, tmp, mlp;
  EncoderScratch(int64_t rows, const EncoderDims& dims);
};

// keep: null, or one token per sequence, the only rows of the block's output the caller reads (the
// last block's, pooled by the class token or CLIP's end-of-text token): keep[b] is a position in
// sequence b (< its rows; sequences without rows are skipped). Every token still serves as a key
// and value, but only the kept rows get queries and go through the attention, the output
// projection, the norms and the MLP: the kept rows get, bit for bit, what the full block gives
// them (each kernel computes a row alike whatever the row count), and the other rows of x are left
// as they were, stale. ViT-B/16's class token: the last block costs 2 of its 12 units of linear
// work (the keys and values).

// x ← LN2(h + MLP(h)) with h = LN1(x + Attn(x))      (DistilBERT / BERT, post-norm)
void post_norm_layer(Isa isa, Parallel* par, const EncoderLayer& layer, const EncoderDims& dims,
                     const EncoderInput& in, float* x, EncoderScratch& s,
                     const int64_t* keep = nullptr);
// x ← h + MLP(LN2(h)) with h = x + Attn(LN1(x))       (ViT, CLIP: pre-norm). The MLP's
// activation is `act` (exact GELU for ViT; OpenAI CLIP's QuickGELU).
void pre_norm_layer(Isa isa, Parallel* par, const EncoderLayer& layer, const EncoderDims& dims,
                    const EncoderInput& in, float* x, EncoderScratch& s,
                    gemm::Activation act = gemm::Activation::gelu, const int64_t* keep = nullptr);

}  // namespace tern::transformer
