#pragma once
// torchvision VisionTransformer (vit_b_16 and other sizes from the config): patch embedding,
// class token, position embedding, pre-norm encoder blocks, final LayerNorm.
#include <memory>

#include "engine/core/tensor.hpp"
#include "engine/core/weights.hpp"
#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern {

class ViT {
 public:
  ViT(const WeightFile& file, Isa isa);
  ~ViT();
  // x: [N, 3, S, S] normalised float, S = image_size(). Returns all tokens after the final
  // LayerNorm: [N, 1 + (S/P)^2, hidden]; token 0 is the class token. Thread-safe.
  Tensor forward(Parallel* par, const Tensor& x) const;
  bool has_head() const;
  Tensor logits(Parallel* par, const Tensor& cls_tokens) const;  // [N, hidden] -> [N, classes]
  int64_t image_size() const;
  int64_t hidden() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
