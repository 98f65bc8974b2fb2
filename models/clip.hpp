#pragma once
// CLIP (OpenAI / open_clip / Hugging Face CLIPModel): an image tower and a text tower in one file,
// both projected into one embedding space of width embed_dim.
//   vision: patch convolution (no bias), class token, positions, ln_pre, pre-norm blocks, ln_post
//           on the class token, projection (no bias)
//   text:   token + position embeddings, causal pre-norm blocks, ln_final, the features at the
//           end-of-text token (the highest id of the sequence, as OpenAI takes it), projection
// The MLP activation is QuickGELU (x·σ(1.702x), OpenAI) or exact GELU, from the config.
//
// Outputs. The default (PoolMode::automatic, the model's own pooling) is the projected embedding,
// [N, embed_dim]. Explicit pooling works on the tower's tokens before projection, at the tower's
// width: at the final layer after the tower's final LayerNorm (vision: ln_post applied to every
// token; text: ln_final), at --layer k the output of block k without it. cls is token 0 (the
// vision class token; the text tower's start token), mean / max run over the patch tokens
// (vision) or every real token (text), none gives every token.
// Layers: "0" (the embeddings; vision after ln_pre) .. "N" with N the deeper tower's depth; a
// block number past a tower's depth is an error for that tower. The projected default needs the
// final layer: with --layer, give --pooling.
#include <memory>

#include "models/model.hpp"

namespace tern {

// The file's byte-level BPE tokenizer ("vocab", "merges", "tokenizer" metadata).
std::unique_ptr<TextTokenizer> load_clip_tokenizer(const WeightFile& file);

class Clip final : public EmbeddingModel {
 public:
  Clip(const WeightFile& file, Isa isa);
  ~Clip() override;

  bool takes_images() const override { return true; }
  bool takes_texts() const override { return true; }
  int64_t dim() const override;  // embed_dim
  PoolMode default_pool() const override { return PoolMode::automatic; }
  std::vector<std::string> layers() const override;
  int64_t fixed_image_size() const override;
  const PreprocessConfig* preprocess() const override;
  const TextTokenizer* tokenizer() const override;
  int64_t max_positions() const override;  // context_length
  // exp(logit_scale) from the file, the factor of CLIP's zero-shot logits; 0 when absent.
  float logit_scale() const override;

  ForwardOutput forward_images(Parallel* par, const Tensor& x,
                               const ForwardRequest& req) const override;
  ForwardOutput forward_tokens(Parallel* par, const TokenBatch& batch,
                               const ForwardRequest& req) const override;
  // Vision when image_h, image_w > 0, text when seq_len > 0 (both: the sum).
  double forward_flops(int64_t batch, int64_t seq_len, int64_t image_h,
                       int64_t image_w) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
