#pragma once
// torchvision ResNet50 (v1.5: stride on the 3x3 conv) as an image embedder: the network up to
// the global average pool, BatchNorm folded into the convs by the exporter. Tensor names and
// layouts: docs/FORMAT.md.
#include <memory>

#include "engine/core/tensor.hpp"
#include "engine/core/weights.hpp"
#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern {

class ResNet50 {
 public:
  // Reads the config and every weight (with its expected shape) and packs them for `isa`.
  ResNet50(const WeightFile& file, Isa isa);
  ~ResNet50();
  // x: [N, 3, H, W] normalised float (NCHW, as torchvision). Returns [N, 2048].
  // Thread-safe: scratch memory is per call.
  Tensor forward(Parallel* par, const Tensor& x) const;
  bool has_head() const;
  // features [N, 2048] -> [N, classes]; tern::Error when the file has no head (--keep-head).
  Tensor logits(Parallel* par, const Tensor& features) const;
  int64_t feature_dim() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
