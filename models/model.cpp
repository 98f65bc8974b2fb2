#include "models/model.hpp"

#include <algorithm>

#include "engine/core/error.hpp"
#include "engine/core/safetensors_header.hpp"  // quoted()

namespace tern {

const char* pool_mode_name(PoolMode p) {
  switch (p) {
    case PoolMode::automatic:
      return "default";
    case PoolMode::none:
      return "none";
    case PoolMode::cls:
      return "cls";
    case PoolMode::mean:
      return "mean";
    case PoolMode::max:
      return "max";
    case PoolMode::mean_sqrt_len:
      return "mean_sqrt_len";
  }
  return "?";
}

namespace {

bool parse_int(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 9) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  int64_t x = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    x = x * 10 + (s[i] - '0');
  }
  *v = s[0] == '-' ? -x : x;
  return true;
}

}  // namespace

int EmbeddingModel::resolve_layer(const std::string& name) const {
  if (name.empty()) return ForwardRequest::kFinal;
  const std::vector<std::string> names = layers();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return static_cast<int>(it - names.begin());
  // Numbered layers ("0" .. "N"): -k counts from the end, -1 being block N.
  const bool numbered = !names.empty() && names.front() == "0";
  const int64_t last = static_cast<int64_t>(names.size()) - 1;
  int64_t k = 0;
  if (numbered && parse_int(name, &k) && k < 0 && -k <= last) return static_cast<int>(last + 1 + k);
  std::string valid;
  if (numbered) {
    valid = "0.." + std::to_string(last) + " (or -" + std::to_string(last) + "..-1 from the end)";
  } else {
    for (const auto& n : names) valid += (valid.empty() ? "" : ", ") + n;
  }
  // quoted(): a name from the command line or a C caller may hold any bytes; the message stays
  // one line of at most ~80 bytes of it.
  fail("layer ", quoted(name), " does not exist in this model; valid layers: ", valid);
}

ForwardOutput EmbeddingModel::forward_images(Parallel*, const Tensor&,
                                             const ForwardRequest&) const {
  fail("this is a text model: it takes no images");
}

ForwardOutput EmbeddingModel::forward_tokens(Parallel*, const TokenBatch&,
                                             const ForwardRequest&) const {
  fail("this is an image model: it takes no texts");
}

}  // namespace tern
