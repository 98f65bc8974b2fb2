#pragma once
// Hugging Face DistilBertModel: word + position embeddings, LayerNorm, post-norm encoder blocks.
// last_hidden_state only (no pooler, no MLM head). Layers: "0" (the embeddings, after their
// LayerNorm) .. "N" (= the default output).
#include <cstdint>
#include <memory>

#include "models/model.hpp"

namespace tern {

class DistilBert final : public EmbeddingModel {
 public:
  DistilBert(const WeightFile& file, Isa isa);
  ~DistilBert() override;

  bool takes_texts() const override { return true; }
  int64_t dim() const override;
  PoolMode default_pool() const override { return PoolMode::none; }
  std::vector<std::string> layers() const override;
  const TextTokenizer* tokenizer() const override;
  int64_t max_positions() const override;
  // ids [n, T] (rows padded past lengths) -> tokens [n, T, D] or pooled [n, D]. Thread-safe.
  ForwardOutput forward_tokens(Parallel* par, const TokenBatch& batch,
                               const ForwardRequest& req) const override;
  double forward_flops(int64_t batch, int64_t seq_len, int64_t image_h,
                       int64_t image_w) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
