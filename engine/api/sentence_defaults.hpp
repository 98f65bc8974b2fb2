#pragma once
// The embedding defaults of a weight file converted from a sentence-transformers directory: the
// `embedding` metadata (docs/FORMAT.md, "Defaults of sentence-transformers directories") and its
// Dense weights `head.dense.K.*`. The API applies them after the encoder: pooling (the file's
// default), Dense layers (+ tanh), L2 normalisation, truncation at max_length, named prompts.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.hpp"
#include "engine/core/weights.hpp"

namespace tern {

struct SentenceDense {
  int64_t in = 0, out = 0;
  bool tanh = false;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], empty without bias
};

struct SentenceDefaults {
  std::string pooling;  // "cls" | "mean" | "max" | "mean_sqrt_len"
  bool include_prompt = true;
  std::vector<SentenceDense> dense;
  bool normalize = false;
  std::map<std::string, std::string> prompts;  // name -> text prepended to the input
  std::string default_prompt;                  // "" = none
  int max_length = 0;                          // tokens per text, [CLS] and [SEP] included
  int64_t dim = 0;                             // width of the final vector

  // nullptr when the file has no "embedding" metadata; tern::Error naming the file and the field
  // when it is malformed or disagrees with the encoder (hidden size, tensor shapes, a max_length
  // above `max_length_limit`, the tokenizer's).
  static std::unique_ptr<SentenceDefaults> load(const WeightFile& file, int64_t hidden,
                                                int max_length_limit);

  // y [n, dim] = the Dense chain over pooled x [n, hidden]. Each row is summed in double in a
  // fixed order, so a vector does not depend on the batch it came in.
  Tensor apply_dense(const float* x, int64_t n) const;

  // The text of prompt `name`; tern::Error listing the prompts when there is none of that name.
  const std::string& prompt(const std::string& name) const;
};

}  // namespace tern
