#pragma once
// Hugging Face BertModel: word + position + token-type embeddings, LayerNorm, post-norm encoder
// blocks (DistilBERT's block), exact-erf GELU. last_hidden_state; with a file exported with
// --keep-head, logits = the pooler (tanh(W·h[CLS] + b), HF's pooler_output). Token types are 0
// (single texts). Layers: "0" (the embeddings, after their LayerNorm) .. "N" (= the default).
// The architecture of most sentence-transformers models (all-MiniLM, bge, e5, gte); their
// pooling / Dense / Normalize defaults are applied by the API (engine/api), not here.
#include <cstdint>
#include <memory>

#include "models/model.hpp"

namespace tern {

class Bert final : public EmbeddingModel {
 public:
  Bert(const WeightFile& file, Isa isa);
  ~Bert() override;

  bool takes_texts() const override { return true; }
  int64_t dim() const override;
  PoolMode default_pool() const override { return PoolMode::none; }
  bool has_head() const override;
  std::vector<std::string> layers() const override;
  const TextTokenizer* tokenizer() const override;
  int64_t max_positions() const override;
  // ids [n, T] (rows padded past lengths) -> tokens [n, T, H] or pooled [n, H]. Thread-safe.
  ForwardOutput forward_tokens(Parallel* par, const TokenBatch& batch,
                               const ForwardRequest& req) const override;
  double forward_flops(int64_t batch, int64_t seq_len, int64_t image_h,
                       int64_t image_w) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
