#pragma once
// Pieces the models share: pooling of per-token outputs, layer names, the preprocessing and the
// tokenizer a weight file describes, FLOP formulas.
#include <cstdint>

#include "engine/core/tensor.hpp"
#include "models/model.hpp"

namespace tern {

// h [n, T, D] -> [n, D]. Input i pools rows [0, lengths[i]) (lengths null: all T):
//   cls            row 0
//   mean / max     rows [first_i, length_i), first_i = skip + (pool_from ? pool_from[i] : 0),
//                  summed in double in row order; an empty range gives zeros
//   mean_sqrt_len  the sum divided by sqrt(count) (sentence-transformers' mean_sqrt_len_tokens)
Tensor pool_tokens(const float* h, int64_t n, int64_t T, int64_t D, const int32_t* lengths,
                   PoolMode mode, int64_t skip, const std::vector<int32_t>& pool_from);

// The output of a transformer over n sequences of T tokens as the request asks for it: pooled
// [n, D], or every token with their lengths.
ForwardOutput token_output(Tensor h, const int32_t* lengths, const ForwardRequest& req,
                           int64_t skip);

// Layer names "0" .. "blocks" for a transformer with that many blocks.
std::vector<std::string> numbered_layers(int64_t blocks);

// Non-overlapping P×P patches of images x [N, 3, S, S] (S a multiple of P), each flattened
// (c, y, x) like a [D, 3, P, P] patch-convolution weight, in torchvision's flatten(2) order
// (patch gy·G + gx, G = S / P): patches [N·G², 3·P·P]. A patch convolution is then one GEMM.
void image_patches(Parallel* par, const float* x, int64_t N, int64_t S, int64_t P, float* patches);

// The file's "preprocess" metadata, or the profile named when the file has none.
PreprocessConfig preprocess_from_file(const WeightFile& file, const char* default_profile);

// The WordPiece tokenizer of a text model's file ("vocab" and "tokenizer" metadata).
std::unique_ptr<WordPieceTokenizer> load_wordpiece(const WeightFile& file);

// FLOPs helpers (1 MAC = 2 FLOP counted by the caller): one encoder block over `tokens` tokens:
// q, k, v, out projections, the FFN, and the two attention matmuls.
double encoder_block_macs(double tokens, double dim, double ffn);

}  // namespace tern
