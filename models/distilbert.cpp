// Placeholder until the DistilBERT implementation lands: every entry point is a clear error.
#include "models/distilbert.hpp"

#include "engine/core/error.hpp"

namespace tern {

struct DistilBert::Impl {};
DistilBert::DistilBert(const WeightFile&, Isa) { fail("distilbert: not implemented yet"); }
DistilBert::~DistilBert() = default;
Tensor DistilBert::forward(Parallel*, const int32_t*, int64_t, int64_t, const int32_t*) const {
  fail("distilbert: not implemented yet");
}
int64_t DistilBert::hidden() const { return 768; }
int64_t DistilBert::max_positions() const { return 512; }

}  // namespace tern
