#pragma once
// torchvision VisionTransformer (vit_b_16 and other sizes from the config): patch embedding,
// class token, position embedding, pre-norm encoder blocks, final LayerNorm. Layers: "0" (the
// embeddings) .. "N" (block N, before the final LayerNorm); the default output includes it.
#include <memory>

#include "models/model.hpp"

namespace tern {

class ViT final : public EmbeddingModel {
 public:
  ViT(const WeightFile& file, Isa isa);
  ~ViT() override;

  bool takes_images() const override { return true; }
  int64_t dim() const override;
  PoolMode default_pool() const override { return PoolMode::cls; }
  bool has_head() const override;
  std::vector<std::string> layers() const override;
  int64_t fixed_image_size() const override;
  const PreprocessConfig* preprocess() const override;
  // x [N, 3, S, S] -> tokens [N, 1 + (S/P)^2, D] (token 0 the class token), pooled [N, D] (cls, or
  // mean / max over the patch tokens), or logits [N, classes] from the final class token.
  // Thread-safe.
  ForwardOutput forward_images(Parallel* par, const Tensor& x,
                               const ForwardRequest& req) const override;
  double forward_flops(int64_t batch, int64_t seq_len, int64_t image_h,
                       int64_t image_w) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
