// libFuzzer target for CLIP's BPE tokenizer (not part of the default build; scripts/fuzz.sh or):
//
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
//     -I. -Iengine/include tests/fuzz/bpe_tokenizer_fuzz.cpp engine/core/bpe_tokenizer.cpp \
//     engine/core/unicode_text.cpp -lutf8proc -o build-fuzz/bpe_tokenizer_fuzz
//   build-fuzz/bpe_tokenizer_fuzz -max_total_time=60 -max_len=4096
//
// The first byte picks what is fuzzed: encode() (with or without truncation, context 77 or 5) on a
// vocabulary of the byte tokens and some merges, the merges parser, or the config JSON. Any input
// must either succeed with a well-formed result (start token, ids in the vocabulary, end token,
// at most max_length ids) or throw tern::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/bpe_tokenizer.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unicode_text.hpp"

namespace {

std::string byte_char(int b) {
  const bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  int n = 0;
  for (int x = 0; x < b; ++x)
    if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE)) ++n;
  std::string s;
  tern::unicode::append_utf8(&s, direct ? char32_t(b) : char32_t(256 + n));
  return s;
}

struct Fixture {
  std::string vocab, merges;
  std::unique_ptr<tern::BpeTokenizer> tok77, tok5;
  Fixture() {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(b));
    for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(b) + "</w>");
    const char* pairs[][2] = {{"t", "h"}, {"th", "e</w>"}, {"a", "a"}, {"aa", "aa"},
                              {"aa", "a</w>"}, {"c", "a"}, {"ca", "t</w>"}, {"'", "s</w>"}};
    for (auto& p : pairs) {
      merges += std::string(p[0]) + " " + p[1] + "\n";
      tokens.push_back(std::string(p[0]) + p[1]);
    }
    tokens.push_back("<|startoftext|>");
    tokens.push_back("<|endoftext|>");
    for (auto& t : tokens) vocab += t + "\n";
    tern::BpeConfig c;
    tok77 = std::make_unique<tern::BpeTokenizer>(vocab, merges, c);
    c.max_length = 5;
    tok5 = std::make_unique<tern::BpeTokenizer>(vocab, merges, c);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  if (size == 0) return 0;
  const int mode = data[0] % 6;
  const std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (mode < 4) {
      const tern::BpeTokenizer& t = mode < 2 ? *f.tok77 : *f.tok5;
      const auto ids = t.encode(input, mode % 2 == 1);
      if (ids.size() < 2 || ids.size() > static_cast<size_t>(t.max_length()) ||
          ids.front() != t.bos_id() || ids.back() != t.eos_id())
        std::abort();
      for (int32_t id : ids)
        if (id < 0 || static_cast<size_t>(id) >= t.vocab_size()) std::abort();
    } else if (mode == 4) {
      tern::BpeTokenizer t(f.vocab, input, tern::BpeConfig{});
      (void)t.encode("the cat", false);
    } else {
      (void)tern::BpeConfig::from_json(input);
    }
  } catch (const tern::Error&) {
  }
  return 0;
}
