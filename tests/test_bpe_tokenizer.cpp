// CLIP's byte-level BPE tokenizer (engine/core/bpe_tokenizer.hpp) on a small hand-built vocabulary,
// and the similarity helpers of the public API. Expectations are written as token strings, each
// with the rule of OpenAI's simple_tokenizer.py that decides it; the ids are looked up in the test
// vocabulary, not through the tokenizer. (tests/python/test_clip_tokenizer.py compares whole
// texts in many scripts against a Python reference and Hugging Face's tokenizer.)
#include <chrono>
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/core/bpe_tokenizer.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unicode_text.hpp"
#include "tern/tern.hpp"
#include "tern/tern_c.h"
#include "test_util.hpp"

using namespace tern;

namespace {

// GPT-2's bytes_to_unicode, written out independently of the tokenizer.
std::string byte_char(int b) {
  std::vector<int> bs;
  for (int x = '!'; x <= '~'; ++x) bs.push_back(x);
  for (int x = 0xA1; x <= 0xAC; ++x) bs.push_back(x);
  for (int x = 0xAE; x <= 0xFF; ++x) bs.push_back(x);
  char32_t cp = 0;
  bool found = false;
  for (int x : bs)
    if (x == b) cp = static_cast<char32_t>(b), found = true;
  if (!found) {
    int n = 0;
    for (int x = 0; x < 256; ++x) {
      bool direct = false;
      for (int y : bs) direct |= y == x;
      if (direct) continue;
      if (x == b) cp = static_cast<char32_t>(256 + n);
      ++n;
    }
  }
  std::string s;
  unicode::append_utf8(&s, cp);
  return s;
}

// The unicode form of a UTF-8 string's bytes.
std::string encoded(const std::string& raw) {
  std::string s;
  for (unsigned char c : raw) s += byte_char(c);
  return s;
}

struct TestVocab {
  std::string vocab, merges;
  std::unordered_map<std::string, int32_t> ids;
  std::vector<std::string> tokens;
  void add(const std::string& t) {
    ids[t] = static_cast<int32_t>(tokens.size());
    tokens.push_back(t);
  }
};

// OpenAI's construction: bytes, bytes + "</w>", one token per merge, the two special tokens.
const TestVocab& test_vocab() {
  static TestVocab v = [] {
    TestVocab t;
    for (int b = 0; b < 256; ++b) t.add(byte_char(b));
    for (int b = 0; b < 256; ++b) t.add(byte_char(b) + "</w>");
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"c", "a"},
        {"ca", "t</w>"},
        {"t", "h"},
        {"th", "e</w>"},
        {"a", "b"},
        {"ab", "ab"},
        {"a", "a"},
        {"aa", "a</w>"},
        {"aa", "aa"},
        {"'", "s</w>"},
        {"o", "g</w>"},
        // ο (CE BF) and ς</w> (CF 82) from their bytes, then ο + ς</w>
        {byte_char(0xCE), byte_char(0xBF)},
        {byte_char(0xCF), byte_char(0x82) + "</w>"},
        {encoded("\xce\xbf"), encoded("\xcf\x82") + "</w>"},
    };
    for (const auto& [a, b] : merges) {
      t.merges += a + " " + b + "\n";
      if (!t.ids.count(a + b)) t.add(a + b);
    }
    t.add("<|startoftext|>");
    t.add("<|endoftext|>");
    for (const auto& tok : t.tokens) t.vocab += tok + "\n";
    return t;
  }();
  return v;
}

std::vector<int32_t> ids(std::initializer_list<const char*> tokens) {
  const auto& v = test_vocab();
  std::vector<int32_t> out{v.ids.at("<|startoftext|>")};
  for (const char* t : tokens) {
    INFO("token " << t);
    REQUIRE(v.ids.count(t));
    out.push_back(v.ids.at(t));
  }
  out.push_back(v.ids.at("<|endoftext|>"));
  return out;
}

const BpeTokenizer& tokenizer() {
  static BpeTokenizer tok(test_vocab().vocab, "#version: 0.2\n" + test_vocab().merges, BpeConfig{});
  return tok;
}

}  // namespace

TEST_CASE("bpe: merges by rank, </w> word ends, contractions, numbers one digit at a time") {
  const auto& t = tokenizer();
  // "cat" -> c a t</w> -> (c,a) rank 0 -> ca t</w> -> (ca, t</w>) rank 1
  CHECK(t.encode("cat", false) == ids({"cat</w>"}));
  // "the cat's" -> the</w>; cat; 's is its own piece ('s alternative) -> 's</w>
  CHECK(t.encode("The CAT's", false) == ids({"the</w>", "cat</w>", "'s</w>"}));
  // "abab": (a,b) rank 4 at both places, then (ab, ab) rank 5 -> "abab" (no </w> form): the last
  // symbol is b</w>, so only the first pair merges: ab, a, b</w> -> ab ab</w>? (ab, b</w>) no.
  // word = a b a b</w>; (a,b) merges the first pair only (the second is a, b</w>): ab a b</w>
  CHECK(t.encode("abab", false) == ids({"ab", "a", "b</w>"}));
  // "aaaaa": a a a a a</w>; (a,a) rank 6 left to right: aa aa a</w>; (aa, a</w>) rank 7 at the
  // end: aa aaa</w>? no: pairs are (aa,aa) rank 8 and (aa,a</w>) rank 7 -> aa aaa</w>
  CHECK(t.encode("aaaaa", false) == ids({"aa", "aaa</w>"}));
  // digits: [\p{N}] is one character per piece
  CHECK(t.encode("a12", false) == ids({"a</w>", "1</w>", "2</w>"}));
  // punctuation runs stay together ([^\s\p{L}\p{N}]+), letters split them
  CHECK(t.encode("!?x...", false) == ids({"!", "?</w>", "x</w>", ".", ".", ".</w>"}));
  // an apostrophe inside a punctuation run is not a contraction: "!'s" -> "!'" + "s"
  CHECK(t.encode("!'s", false) == ids({"!", "'</w>", "s</w>"}));
}

TEST_CASE("bpe: normalisation is OpenAI's basic_clean + whitespace_clean + lower (no ftfy)") {
  CHECK(BpeTokenizer::normalize("  Hello \t\n  World  ") == "hello world");
  CHECK(BpeTokenizer::normalize("a\xe3\x80\x80"
                                "b\xc2\xa0"
                                "c") == "a b c");  // U+3000, NBSP: \s
  // U+001C..U+001F: str.strip removes them at the ends, \s does not match them inside
  CHECK(BpeTokenizer::normalize("\x1c"
                                "a\x1d"
                                "b\x1f") ==
        "a\x1d"
        "b");
  // html.unescape twice: &amp;lt; -> &lt; -> <
  CHECK(BpeTokenizer::normalize("&amp;lt;b&amp;gt; &quot;x&quot; &#39;y&#39; &#x41;&#66;") ==
        "<b> \"x\" 'y' ab");
  // legacy names without ';' and the longest known prefix; unknown names stay
  CHECK(BpeTokenizer::normalize("&amp &ampx &copy2 &zzz; &#; a&b") ==
        "& &x \xc2\xa9"
        "2 &zzz; &#; a&b");
  // numeric references: Windows-1252 remap, surrogates and > U+10FFFF -> U+FFFD, dropped controls
  CHECK(BpeTokenizer::normalize("&#150;&#xD800;&#1114112;&#7;z") ==
        "\xe2\x80\x93\xef\xbf\xbd\xef\xbf\xbdz");
  // &nbsp; becomes U+00A0 after the first unescape, whitespace after the second step
  CHECK(BpeTokenizer::normalize("a&nbsp;&nbsp;b") == "a b");
  // str.lower: final sigma (cased before, no cased letter after), U+0130 -> i + U+0307
  CHECK(BpeTokenizer::normalize("\xce\x9f\xce\xa3 \xce\xa3\xce\x9f \xce\xa3") ==
        "\xce\xbf\xcf\x82 \xcf\x83\xce\xbf \xcf\x83");
  CHECK(BpeTokenizer::normalize("\xc4\xb0") == "i\xcc\x87");
}

TEST_CASE("bpe: special tokens, final sigma merges, and raw bytes of any script") {
  const auto& t = tokenizer();
  // the special tokens written in the text (also in capitals: the text is lowercased first)
  CHECK(t.encode("cat <|endoftext|>the", false) == ids({"cat</w>", "<|endoftext|>", "the</w>"}));
  CHECK(t.encode("<|STARTOFTEXT|>", false) == ids({"<|startoftext|>"}));
  // "ΟΣ" -> "ος": the merge of ο and ς</w> applies
  const std::string os = encoded("\xce\xbf") + encoded("\xcf\x82") + "</w>";
  const std::vector<int32_t> want{test_vocab().ids.at("<|startoftext|>"), test_vocab().ids.at(os),
                                  test_vocab().ids.at("<|endoftext|>")};
  CHECK(t.encode("\xce\x9f\xce\xa3", false) == want);
  // an emoji is one piece of 4 bytes: 3 byte tokens and one with </w>
  const std::string e = "\xf0\x9f\x98\x80";
  auto got = t.encode(e, false);
  REQUIRE(got.size() == 6);
  for (int k = 0; k < 4; ++k) {
    const std::string tok = byte_char(static_cast<unsigned char>(e[k])) + (k == 3 ? "</w>" : "");
    CHECK(got[k + 1] == test_vocab().ids.at(tok));
  }
  CHECK(t.encode("", false) == ids({}));
  CHECK(t.encode(" \t ", false) == ids({}));
}

TEST_CASE("bpe: context length, truncation keeps the end token, invalid UTF-8") {
  const auto& t = tokenizer();
  std::string text;
  for (int i = 0; i < 75; ++i) text += "cat ";
  CHECK(t.encode(text, false).size() == 77);  // 75 + start + end fits exactly
  text += "the";
  CHECK_THROWS_WITH_AS(t.encode(text, false),
                       "text is 78 tokens long with <|startoftext|> and <|endoftext|>, over the "
                       "context length 77 (truncate to keep the first 75)",
                       Error);
  const auto cut = t.encode(text, true);
  REQUIRE(cut.size() == 77);
  CHECK(cut.back() == t.eos_id());
  CHECK(cut[75] == test_vocab().ids.at("cat</w>"));
  CHECK_THROWS_WITH_AS(t.encode("ok \xff", false), "invalid UTF-8 at byte offset 3", Error);
  // a long word is O(n log n), and truncation stops early
  const std::string word(200000, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(t.encode(word, true).size() == 77);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("bpe: bad vocabularies, merges and configs are one-line errors") {
  const auto& v = test_vocab();
  CHECK_THROWS_WITH_AS(BpeTokenizer("a\nb\n", "", BpeConfig{}),
                       doctest::Contains("lacks the start token"), Error);
  CHECK_THROWS_WITH_AS(BpeTokenizer(v.vocab, "c\n", BpeConfig{}),
                       "merges line 1: expected two tokens separated by one space", Error);
  CHECK_THROWS_WITH_AS(BpeTokenizer(v.vocab, "x y\n", BpeConfig{}),
                       "merges line 1: \"x y\" names a token the vocab lacks", Error);
  std::string no_byte = v.vocab;
  no_byte.replace(0, byte_char(0).size() + 1, "");  // drop the first byte token's line
  CHECK_THROWS_WITH_AS(BpeTokenizer(no_byte, "", BpeConfig{}),
                       doctest::Contains("lacks the byte token"), Error);
  CHECK_THROWS_WITH_AS(BpeConfig::from_json(R"({"type": "wordpiece"})"),
                       doctest::Contains("\"type\" must be \"bpe\""), Error);
  CHECK_THROWS_WITH_AS(BpeConfig::from_json(R"({"type": "bpe", "lowercase": true})"),
                       "tokenizer config: unknown key \"lowercase\"", Error);
  const BpeConfig c = BpeConfig::from_json(BpeConfig{}.to_json());
  CHECK(c.max_length == 77);
  CHECK(c.eos_token == "<|endoftext|>");
}

TEST_CASE("similarity: cosine matrix and zero-shot softmax against direct formulas") {
  std::vector<Embedding> a = {{{3}, {1, 2, 2}}, {{3}, {0, 0, 0}}, {{3}, {-1, 0.5f, 4}}};
  std::vector<Embedding> b = {{{3}, {2, 0, 0}}, {{3}, {1, 2, 2}}};
  const auto cos = cosine_matrix(a, b);
  REQUIRE(cos.size() == 6);
  CHECK(cos[0] == doctest::Approx(1.0 / 3.0).epsilon(1e-7));
  CHECK(cos[1] == doctest::Approx(1.0).epsilon(1e-7));
  CHECK(cos[2] == 0.f);  // a zero vector
  CHECK(cos[3] == 0.f);
  const double n2 = std::sqrt(1 + 0.25 + 16);
  CHECK(cos[4] == doctest::Approx(-1 / n2).epsilon(1e-7));
  CHECK(cos[5] == doctest::Approx((-1 + 1 + 8) / (3 * n2)).epsilon(1e-7));
  const auto p = zero_shot_softmax(cos, 2, 100.f);
  for (int r = 0; r < 3; ++r) {
    const double e0 = std::exp(100.0 * cos[r * 2]), e1 = std::exp(100.0 * cos[r * 2 + 1]);
    CHECK(p[r * 2] == doctest::Approx(e0 / (e0 + e1)).epsilon(1e-6));
    CHECK(p[r * 2] + p[r * 2 + 1] == doctest::Approx(1.0).epsilon(1e-6));
  }
  CHECK_THROWS_WITH_AS(zero_shot_softmax(cos, 2, 0.f), doctest::Contains("must be positive"),
                       Error);
  CHECK_THROWS_WITH_AS(zero_shot_softmax(cos, 4, 1.f), doctest::Contains("not rows of 4"), Error);
  std::vector<Embedding> wide = {{{4}, {1, 2, 3, 4}}};
  CHECK_THROWS_WITH_AS(cosine_matrix(a, wide), doctest::Contains("has width 4, expected 3"), Error);
  std::vector<Embedding> tokens = {{{2, 3}, {1, 2, 3, 4, 5, 6}}};
  CHECK_THROWS_WITH_AS(cosine_matrix(tokens, b), doctest::Contains("pool it first"), Error);
}

TEST_CASE("similarity: the C API's tern_cosine_matrix, with and without the softmax") {
  const float a[6] = {1, 2, 2, -1, 0.5f, 4};  // [2, 3]
  const float b[6] = {2, 0, 0, 1, 2, 2};      // [2, 3]
  float cos[4], probs[4];
  REQUIRE(tern_cosine_matrix(a, 2, b, 2, 3, 0.f, cos) == TERN_OK);
  const double n2 = std::sqrt(1 + 0.25 + 16);
  CHECK(cos[0] == doctest::Approx(1.0 / 3.0).epsilon(1e-7));
  CHECK(cos[1] == doctest::Approx(1.0).epsilon(1e-7));
  CHECK(cos[2] == doctest::Approx(-1 / n2).epsilon(1e-7));
  REQUIRE(tern_cosine_matrix(a, 2, b, 2, 3, 50.f, probs) == TERN_OK);
  for (int r = 0; r < 2; ++r) {
    const double e0 = std::exp(50.0 * cos[2 * r]), e1 = std::exp(50.0 * cos[2 * r + 1]);
    CHECK(probs[2 * r] == doctest::Approx(e0 / (e0 + e1)).epsilon(1e-6));
  }
  CHECK(tern_cosine_matrix(nullptr, 2, b, 2, 3, 0.f, cos) == TERN_INVALID_ARGUMENT);
  CHECK(std::string(tern_last_error()).find("must not be NULL") != std::string::npos);
  CHECK(tern_cosine_matrix(a, 2, b, 2, 3, -1.f, cos) == TERN_INVALID_ARGUMENT);
  CHECK(tern_model_logit_scale(nullptr) == 0.f);
}
