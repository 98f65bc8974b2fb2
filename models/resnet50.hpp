#pragma once
// torchvision ResNet50 (v1.5: stride on the 3x3 conv) as an image embedder: the network up to
// the global average pool, BatchNorm folded into the convs by the exporter. Tensor names and
// layouts: docs/FORMAT.md. Layers: "stem" (after the max pool), "layer1" .. "layer4" (default).
#include <memory>

#include "models/model.hpp"

namespace tern {

class ResNet50 final : public EmbeddingModel {
 public:
  // Reads the config and every weight (with its expected shape) and packs them for `isa`.
  ResNet50(const WeightFile& file, Isa isa);
  ~ResNet50() override;

  bool takes_images() const override { return true; }
  int64_t dim() const override;  // features of the last stage (2048)
  PoolMode default_pool() const override { return PoolMode::mean; }
  bool has_head() const override;
  std::vector<std::string> layers() const override;
  const PreprocessConfig* preprocess() const override;
  // x [N, 3, H, W] -> pooled [N, C] (mean: the global average pool of the stage) or the stage's
  // feature map [N, C, h, w] (none); logits: [N, classes] from the pooled last stage.
  // Thread-safe: scratch memory is per call.
  ForwardOutput forward_images(Parallel* par, const Tensor& x,
                               const ForwardRequest& req) const override;
  double forward_flops(int64_t batch, int64_t seq_len, int64_t image_h,
                       int64_t image_w) const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
