// libFuzzer target for the BERT tokenizer (not part of the default build). Build and run:
//
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
//     -I. -Iengine/include -DTERN_SHARED_DIR="\"$PWD/../shared\"" tests/fuzz/tokenizer_fuzz.cpp \
//     engine/core/tokenizer.cpp engine/core/unicode_text.cpp -lutf8proc -o build-fuzz/tokenizer_fuzz
//   mkdir -p build-fuzz/tok-corpus && split -b 256 ../shared/data/tokenizer-reference/Metal_umlaut.txt \
//     build-fuzz/tok-corpus/ref-
//   build-fuzz/tokenizer_fuzz -max_total_time=60 -max_len=4096 build-fuzz/tok-corpus
//
// The first byte picks what is fuzzed: encode() with the cased or uncased BERT vocabulary (with or
// without truncation, default or small max_length), the vocabulary parser, or the config JSON.
// Any input must either succeed with a well-formed result or throw tern::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "engine/core/error.hpp"
#include "engine/core/tokenizer.hpp"

#ifndef TERN_SHARED_DIR
#define TERN_SHARED_DIR "../shared"
#endif

namespace {

std::string read_vocab(const char* name) {
  std::ifstream f(std::string(TERN_SHARED_DIR) + "/data/vocab/" + name, std::ios::binary);
  if (!f) std::abort();  // a broken fuzz setup, not a finding
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Tokenizers {
  std::unique_ptr<tern::WordPieceTokenizer> by_mode[4];
  Tokenizers() {
    const std::string cased = read_vocab("bert-base-cased-vocab.txt");
    const std::string uncased = read_vocab("bert-base-uncased-vocab.txt");
    for (int m = 0; m < 4; ++m) {
      tern::TokenizerConfig c;
      c.lowercase = c.strip_accents = (m & 1) != 0;
      c.max_length = (m & 2) ? 8 : 512;
      by_mode[m] = std::make_unique<tern::WordPieceTokenizer>(c.lowercase ? uncased : cased, c);
    }
  }
};

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizers tokenizers;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (mode < 0xE0) {
      const tern::WordPieceTokenizer& tok = *tokenizers.by_mode[mode & 3];
      const bool truncate = (mode & 4) != 0;
      const auto ids = tok.encode(text, truncate);
      check(ids.size() >= 2 && ids.front() == tok.cls_id() && ids.back() == tok.sep_id());
      check(ids.size() <= static_cast<size_t>(tok.config().max_length));
      for (int32_t id : ids) check(id >= 0 && static_cast<size_t>(id) < tok.vocab_size());
      // A text that fits is not changed by truncation.
      if (!truncate) check(tok.encode(text, true) == ids);
    } else if (mode < 0xF0) {
      tern::TokenizerConfig c;
      c.lowercase = (mode & 1) != 0;
      tern::WordPieceTokenizer tok(text, c);
      check(tok.vocab_size() > 0);
      tok.encode(text, true);
    } else {
      const tern::TokenizerConfig c = tern::TokenizerConfig::from_json(text);
      check(tern::TokenizerConfig::from_json(c.to_json()).to_json() == c.to_json());
    }
  } catch (const tern::Error&) {
  }
  return 0;
}
