// Placeholder until the ResNet50 implementation lands: every entry point is a clear error.
#include "models/resnet50.hpp"

#include "engine/core/error.hpp"

namespace tern {

struct ResNet50::Impl {};
ResNet50::ResNet50(const WeightFile&, Isa) { fail("resnet50: not implemented yet"); }
ResNet50::~ResNet50() = default;
Tensor ResNet50::forward(Parallel*, const Tensor&) const { fail("resnet50: not implemented yet"); }
bool ResNet50::has_head() const { return false; }
Tensor ResNet50::logits(Parallel*, const Tensor&) const { fail("resnet50: not implemented yet"); }
int64_t ResNet50::feature_dim() const { return 2048; }

}  // namespace tern
