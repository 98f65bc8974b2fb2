#pragma once
// Hugging Face DistilBertModel: word + position embeddings, LayerNorm, post-norm encoder blocks.
// last_hidden_state only (no pooler, no MLM head).
#include <cstdint>
#include <memory>

#include "engine/core/tensor.hpp"
#include "engine/core/weights.hpp"
#include "kernels/isa.hpp"
#include "kernels/parallel.hpp"

namespace tern {

class DistilBert {
 public:
  DistilBert(const WeightFile& file, Isa isa);
  ~DistilBert();
  // ids: [batch, seq_len] row-major, rows padded past lengths[b] (any id there is ignored).
  // Returns [batch, seq_len, hidden]; rows past lengths[b] are zero. Thread-safe.
  Tensor forward(Parallel* par, const int32_t* ids, int64_t batch, int64_t seq_len,
                 const int32_t* lengths) const;
  int64_t hidden() const;
  int64_t max_positions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern
