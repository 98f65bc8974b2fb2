#pragma once
// The BERT family's text encoder, shared by DistilBERT and BERT: token + position (+ token type
// 0) embeddings, LayerNorm, post-norm encoder blocks, computed on the real tokens of a batch only
// (packed rows; attention per sequence). Canonical tensor names (docs/FORMAT.md):
//   embeddings.word [vocab, D], embeddings.position [positions, D],
//   embeddings.token_type [types, D] (BERT; row 0 is every token's, a single text's type),
//   embeddings.norm.weight / .bias [D], layers.N.* (models/transformer_encoder.hpp).
#include <cstdint>
#include <string>
#include <vector>

#include "models/model.hpp"
#include "models/transformer_encoder.hpp"

namespace tern::transformer {

struct TextEncoderShape {
  EncoderDims dims;
  int64_t vocab = 0, positions = 0, types = 0, layers = 0;  // types 0: no token-type table
  float eps = 1e-12f;
};

class TextEncoder {
 public:
  TextEncoder() = default;
  // `arch` names the model in errors.
  TextEncoder(const WeightFile& file, Isa isa, const std::string& arch, const TextEncoderShape& s);

  // The real tokens of a batch after `blocks` blocks (0: the embeddings after their norm):
  // x [rows, D] with sequence b at rows [offsets[b], offsets[b + 1]).
  struct Packed {
    std::vector<float> x;
    std::vector<int64_t> offsets;
    std::vector<int32_t> lengths;
  };
  // Checks lengths, ids and positions (tern::Error naming the sequence and position).
  // cls_only: the caller reads each sequence's first token alone (--pooling cls, BERT's pooler),
  // so the last block computes that row alone (transformer_encoder.hpp, keep); the other rows of
  // x are then stale.
  Packed run(Parallel* par, const TokenBatch& batch, int64_t blocks, bool cls_only = false) const;
  // [batch, seq_len, D]: each sequence's tokens, rows past its length zero.
  static Tensor padded(const Packed& p, int64_t seq_len, int64_t dim);

 private:
  Isa isa_{};
  std::string arch_;
  TextEncoderShape shape_;
  Tensor word_, position_, token_type0_;  // token_type0_ [D], empty without types
  Norm embed_norm_;
  std::vector<EncoderLayer> layers_;
};

}  // namespace tern::transformer
