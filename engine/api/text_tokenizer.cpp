// tern::Tokenizer: a text model's tokenizer alone, from the weight file's metadata.
#include "engine/api/tokenize_checked.hpp"
#include "engine/core/error.hpp"
#include "engine/core/tokenizer.hpp"
#include "engine/core/weights.hpp"
#include "models/model.hpp"
#include "tern/tern.hpp"

namespace tern {

struct Tokenizer::Impl {
  std::unique_ptr<TextTokenizer> tokenizer;
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
  const auto w = WeightFile::open(path);
  const Architecture* arch = find_architecture(w->architecture());
  if (!arch)
    fail(path, ": unknown architecture '", w->architecture(), "' (expected ", architecture_names(),
         ")");
  if (!arch->load_tokenizer)
    fail(path, ": a ", w->architecture(), " file has no tokenizer (a text model has one)");
  auto impl = std::make_unique<Impl>();
  try {
    impl->tokenizer = arch->load_tokenizer(*w);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::vector<int32_t> Tokenizer::tokenize(const std::string& text, bool truncate,
                                         int max_length) const {
  return tokenize_checked(*impl_->tokenizer, text, truncate, max_length);
}

int Tokenizer::max_length() const {
  return impl_->tokenizer->max_length();
}

}  // namespace tern
