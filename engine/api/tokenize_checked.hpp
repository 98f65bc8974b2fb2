#pragma once
// The one rule for a caller's max_length, shared by Model::tokenize and Tokenizer::tokenize:
// 0 = the model's; otherwise 2 (start and end tokens) up to the model's. A longer text is an
// error, or with truncate keeps its first max_length - 2 pieces and the end token.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/tokenizer.hpp"

namespace tern {

inline std::vector<int32_t> tokenize_checked(const TextTokenizer& tokenizer,
                                             const std::string& text, bool truncate,
                                             int max_length) {
  const int model_max = tokenizer.max_length();
  if (max_length != 0 && (max_length < 2 || max_length > model_max))
    fail("max length ", max_length, " is out of range (2..", model_max,
         ", the model's limit; 0 = the model's)");
  std::vector<int32_t> ids = tokenizer.encode(text, truncate);
  if (max_length > 0 && static_cast<int>(ids.size()) > max_length) {
    if (!truncate)
      fail("text has ", ids.size(), " tokens, more than the maximum of ", max_length,
           " (use --truncate to cut it)");
    const int32_t sep = ids.back();
    ids.resize(max_length);
    ids.back() = sep;
  }
  return ids;
}

}  // namespace tern
