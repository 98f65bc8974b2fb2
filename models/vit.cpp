// Placeholder until the ViT implementation lands: every entry point is a clear error.
#include "models/vit.hpp"

#include "engine/core/error.hpp"

namespace tern {

struct ViT::Impl {};
ViT::ViT(const WeightFile&, Isa) { fail("vit: not implemented yet"); }
ViT::~ViT() = default;
Tensor ViT::forward(Parallel*, const Tensor&) const { fail("vit: not implemented yet"); }
bool ViT::has_head() const { return false; }
Tensor ViT::logits(Parallel*, const Tensor&) const { fail("vit: not implemented yet"); }
int64_t ViT::image_size() const { return 224; }
int64_t ViT::hidden() const { return 768; }

}  // namespace tern
