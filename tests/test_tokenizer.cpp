// BERT WordPiece tokenizer: ids identical to Hugging Face's fast tokenizer.
//
// The reference files (shared/data/tokenizer-reference) are real outputs of HF's fast tokenizer.
// For the other cases HF cannot run here, so each expectation is written as the token strings the
// HF rules produce, with the rule that decides it in a comment; the test looks the strings up in
// the vocabulary file itself (line number = id), not through the tokenizer under test.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "engine/core/error.hpp"
#include "engine/core/tokenizer.hpp"
#include "engine/core/unicode_text.hpp"
#include "test_util.hpp"

using namespace tern;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct VocabFile {
  std::string text;
  std::unordered_map<std::string, int32_t> ids;
};

const VocabFile& vocab_file(bool cased) {
  static VocabFile files[2];
  VocabFile& v = files[cased];
  if (v.text.empty()) {
    v.text = read_file(test::shared_path(cased ? "data/vocab/bert-base-cased-vocab.txt"
                                               : "data/vocab/bert-base-uncased-vocab.txt"));
    std::istringstream lines(v.text);
    std::string line;
    for (int32_t id = 0; std::getline(lines, line); ++id) v.ids.emplace(line, id);
  }
  return v;
}

TokenizerConfig bert_config(bool cased, int max_length = 512) {
  TokenizerConfig c;
  c.lowercase = !cased;
  c.strip_accents = !cased;  // HF: strip_accents None follows lowercase
  c.max_length = max_length;
  return c;
}

const WordPieceTokenizer& bert(bool cased) {
  static const WordPieceTokenizer uncased(vocab_file(false).text, bert_config(false));
  static const WordPieceTokenizer with_case(vocab_file(true).text, bert_config(true));
  return cased ? with_case : uncased;
}

// [CLS] tokens [SEP] as ids, looked up in the vocabulary file.
std::vector<int32_t> expect(bool cased, const std::vector<std::string>& tokens) {
  const auto& ids = vocab_file(cased).ids;
  std::vector<int32_t> out{ids.at("[CLS]")};
  for (const auto& t : tokens) {
    auto it = ids.find(t);
    REQUIRE_MESSAGE(it != ids.end(), "expected token '" << t << "' is not in the vocabulary");
    out.push_back(it->second);
  }
  out.push_back(ids.at("[SEP]"));
  return out;
}

std::string describe(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

void check_tokens(bool cased, const std::string& text, const std::vector<std::string>& tokens) {
  INFO((cased ? "cased" : "uncased") << " text: \"" << text << "\"");
  const auto got = bert(cased).encode(text);
  const auto want = expect(cased, tokens);
  INFO("got:  " << describe(got));
  INFO("want: " << describe(want));
  CHECK(got == want);
}

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

TEST_CASE("tokenizer: HF reference outputs (shared/data/tokenizer-reference), cased and uncased") {
  namespace fs = std::filesystem;
  const fs::path dir = test::shared_path("data/tokenizer-reference");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    const auto ref = nlohmann::json::parse(read_file(entry.path().string()));
    const std::string model = ref.at("model_name");
    REQUIRE((model == "bert-base-cased" || model == "bert-base-uncased"));
    const bool cased = model == "bert-base-cased";
    const std::string input = fs::path(ref.at("input_file").get<std::string>()).filename();
    const std::string text = read_file((dir / input).string());
    const auto want = ref.at("token_ids").get<std::vector<int32_t>>();
    const auto ref_tokens = ref.at("tokens").get<std::vector<std::string>>();
    // The references tokenize each file as one text, without truncation.
    const WordPieceTokenizer tok(vocab_file(cased).text, bert_config(cased, 1 << 20));
    const auto got = tok.encode(text);
    size_t first_diff = 0;
    while (first_diff < got.size() && first_diff < want.size() && got[first_diff] == want[first_diff])
      ++first_diff;
    INFO(entry.path().filename().string() << ": " << got.size() << " ids, reference "
                                          << want.size() << "; first difference at " << first_diff
                                          << " (reference token '"
                                          << (first_diff < ref_tokens.size() ? ref_tokens[first_diff] : "")
                                          << "')");
    CHECK(got == want);
    ++files;
  }
  CHECK(files >= 4);
}

TEST_CASE("tokenizer: empty, whitespace-only, control-only and zero-width-only texts give [CLS] [SEP]") {
  for (bool cased : {true, false}) {
    // clean_text drops Cc/Cf (except \t \n \r, which are whitespace) and maps whitespace to ' ';
    // the pre-tokenizer then drops the spaces. U+200B/C/D, U+2060 and U+FEFF are Cf.
    for (const std::string& text :
         {std::string(), std::string(" \t\n\r  "), std::string("\x01\x02\x1b\x7f", 4),
          std::string("\u00a0\u3000\u2028"), std::string("\u200b\u200c\u200d\u2060\ufeff"),
          std::string("\0\0\0", 3), std::string("\ufffd")}) {
      INFO("text bytes: " << text.size());
      CHECK(bert(cased).encode(text) == expect(cased, {}));
    }
  }
}

TEST_CASE("tokenizer: basic words and punctuation, cased and uncased") {
  check_tokens(true, "Hello, world!", {"Hello", ",", "world", "!"});
  check_tokens(false, "Hello, world!", {"hello", ",", "world", "!"});
  // Every ASCII punctuation character (33-47, 58-64, 91-96, 123-126: also $ + < = > ^ ` | ~,
  // which Unicode calls symbols) and every Unicode P* character is a word of its own; runs are
  // not merged. € is Sc, not punctuation, so it stays a word by itself only because of spaces.
  const std::string punct = "Wait...!?  $100+ (a)[b]{c} «quote» ¿qué? — x–y € ~^`|<=>";
  check_tokens(true, punct,
               {"Wait", ".", ".", ".", "!", "?", "$", "100", "+", "(", "a", ")", "[", "b", "]",
                "{",    "c", "}", "«", "quote", "»", "¿", "q", "##ué", "?", "—", "x", "–",
                "y",    "€", "~", "^", "`", "|", "<", "=", ">"});
  check_tokens(false, punct,
               {"wait", ".", ".", ".", "!", "?", "$", "100", "+", "(", "a", ")", "[", "b", "]",
                "{",    "c", "}", "«", "quote", "»", "¿", "que", "?", "—", "x", "–", "y",
                "€",    "~", "^", "`", "|", "<", "=", ">"});
}

TEST_CASE("tokenizer: NUL, controls, whitespace classes, U+FFFD, zero-width and private use") {
  for (bool cased : {true, false}) {
    // NUL is dropped, not a terminator: "hello\0world" is the one word "helloworld".
    check_tokens(cased, std::string("hello\0world", 11), {"hello", "##world"});
  }
  // clean_text filters controls *before* mapping whitespace, so VT (U+000B) and NEL (U+0085),
  // which are White_Space but also Cc, are dropped and join their neighbours; LS (U+2028, Zl) and
  // NBSP (U+00A0, Zs) are not controls and become spaces.
  const std::string ws = "a\vb c\u0085d e\u2028f g\u00a0h";
  check_tokens(true, ws, {"a", "##b", "c", "##d", "e", "f", "g", "h"});
  check_tokens(false, ws, {"ab", "cd", "e", "f", "g", "h"});
  // U+200B/C/D and U+FEFF are Cf (dropped, words join); U+E000 is Co (dropped); U+FFFD dropped.
  const std::string zw = "zero\u200bwidth\u200cjoin\u200dand\ufeffbom \ue000pu\ue000a x\ufffdy";
  check_tokens(true, zw,
               {"zero", "##wi", "##dt", "##h", "##join", "##and", "##bo", "##m", "pu", "##a", "x",
                "##y"});
  check_tokens(false, zw,
               {"zero", "##wi", "##dt", "##h", "##jo", "##ina", "##nd", "##bo", "##m", "pu", "##a",
                "x", "##y"});
}

TEST_CASE("tokenizer: accents are kept when cased, stripped (NFD, drop Mn) when uncased") {
  const std::string text = "Café naïve Ünïcödé résumé";
  check_tokens(true, text,
               {"Café", "na", "##ï", "##ve", "Ü", "##n", "##ï", "##c", "##ö", "##d", "##é", "r",
                "##és", "##um", "##é"});
  check_tokens(false, text, {"cafe", "naive", "unicode", "resume"});
  // Decomposed input (n + U+0303 + U+0323 on top of precomposed ñ) strips the same way.
  check_tokens(false, "ñ\u0303\u0323x", {"n", "##x"});
  check_tokens(true, "ñ\u0303\u0323x", {"[UNK]"});
}

TEST_CASE("tokenizer: CJK ideographs are split, other scripts follow the generic rules") {
  // CJK ideographs get spaces around them, so each is a word; 我/爱/门 are missing from the cased
  // vocabulary (and 爱/门 from the uncased one) and become [UNK].
  check_tokens(true, "我爱北京天安门", {"[UNK]", "[UNK]", "北", "京", "天", "安", "[UNK]"});
  check_tokens(false, "我爱北京天安门", {"我", "[UNK]", "北", "京", "天", "安", "[UNK]"});
  // Hangul syllables are not "Chinese characters". Cased: the words are not coverable -> [UNK].
  // Uncased: NFD decomposes the syllables into conjoining jamo (all Lo, so none is stripped),
  // which WordPiece then matches one by one; 세계's final jamo ᄀ+ᅨ has no "##ᅨ" -> [UNK].
  check_tokens(true, "안녕하세요 세계", {"[UNK]", "[UNK]"});
  check_tokens(false, "안녕하세요 세계",
               {"ᄋ", "##ᅡ", "##ᆫ", "##ᄂ", "##ᅧ", "##ᆼ", "##ᄒ", "##ᅡ", "##ᄉ", "##ᅦ", "##ᄋ", "##ᅭ",
                "[UNK]"});
  // Arabic harakat (fatha, sukun, fathatan: Mn) are stripped when uncased; kept when cased, where
  // the first word cannot be covered.
  const std::string arabic = "مَرْحَبًا بالعالم";
  check_tokens(true, arabic, {"[UNK]", "ب", "##ا", "##ل", "##ع", "##ا", "##ل", "##م"});
  check_tokens(false, arabic,
               {"م", "##ر", "##ح", "##ب", "##ا", "ب", "##ا", "##ل", "##ع", "##ا", "##ل", "##م"});
  // Devanagari: virama U+094D and vowel signs U+0947/U+0941 are Mn (stripped when uncased); the
  // vowel signs U+093F/U+093E are Mc (kept).
  const std::string hindi = "नमस्ते दुनिया";
  check_tokens(true, hindi,
               {"न", "##म", "##स", "##्", "##त", "##े", "द", "##ु", "##न", "##ि", "##य", "##ा"});
  check_tokens(false, hindi, {"न", "##म", "##स", "##त", "द", "##न", "##ि", "##य", "##ा"});
  // Thai has no spaces between words; the whole run is one word the vocabulary cannot cover.
  check_tokens(true, "สวัสดีชาวโลก", {"[UNK]"});
  check_tokens(false, "สวัสดีชาวโลก", {"[UNK]"});
  // Greek: Rust's char::to_lowercase has no final-sigma rule, so every Σ becomes σ.
  check_tokens(false, "Ωμέγα ΣΊΣΥΦΟΣ",
               {"ω", "##μ", "##ε", "##γ", "##α", "σ", "##ι", "##σ", "##υ", "##φ", "##ο", "##σ"});
}

TEST_CASE("tokenizer: emoji with ZWJ, variation selectors and flags") {
  // The ZWJs (Cf) are dropped, leaving one word of three emoji; ❤️ keeps U+2764 (+ U+FE0F, an
  // Mn, when cased); flags are pairs of regional indicators (So). None is in either vocabulary.
  for (bool cased : {true, false})
    check_tokens(cased, "👨‍👩‍👧 ❤️ 🇺🇸 🇯🇵 🥲", {"[UNK]", "[UNK]", "[UNK]", "[UNK]", "[UNK]"});
}

TEST_CASE("tokenizer: İ ß ﬁ Ａ and the full lowercase mapping") {
  // Cased: no normalisation beyond cleaning; İ ß ﬁ are vocabulary entries, Ａ (U+FF21) is not.
  check_tokens(true, "İ ß ﬁ Ａ", {"İ", "ß", "ﬁ", "[UNK]"});
  check_tokens(true, "İstanbul straße ﬁnal ＡＢＣ",
               {"İ", "##stan", "##bul", "s", "##tra", "##ße", "ﬁ", "##nal", "[UNK]"});
  // Uncased: strip_accents runs before lowercase, so İ -> NFD I + U+0307 -> I -> i. ß and ﬁ have
  // no canonical decomposition or single-character lowercase change (ﬁ's decomposition is a
  // compatibility one, which NFD does not apply). Ａ lowercases to ａ, not in the vocabulary.
  check_tokens(false, "İ ß ﬁ Ａ", {"i", "ß", "ﬁ", "[UNK]"});
  check_tokens(false, "İstanbul straße ﬁnal ＡＢＣ",
               {"istanbul", "st", "##raße", "ﬁ", "##nal", "[UNK]"});
  // lowercase without strip_accents: Rust's full mapping turns İ into "i" + U+0307, and "##̇" is
  // not a vocabulary entry, so the word is [UNK] (a simple mapping would have given "i").
  TokenizerConfig cfg = bert_config(false);
  cfg.strip_accents = false;
  const WordPieceTokenizer tok(vocab_file(false).text, cfg);
  CHECK(tok.encode("İ İstanbul") == expect(false, {"[UNK]", "[UNK]"}));
  CHECK(tok.encode("Istanbul") == expect(false, {"istanbul"}));
}

TEST_CASE("tokenizer: special tokens written in the text are matched before normalisation") {
  const auto& ids = vocab_file(false).ids;
  const int32_t cls = ids.at("[CLS]"), sep = ids.at("[SEP]"), mask = ids.at("[MASK]");
  const int32_t a = ids.at("a"), b = ids.at("b");
  CHECK(bert(false).encode("a [MASK] b") == std::vector<int32_t>{cls, a, mask, b, sep});
  CHECK(bert(false).encode("a[MASK]b") == std::vector<int32_t>{cls, a, mask, b, sep});
  CHECK(bert(false).encode("[CLS][SEP]") == std::vector<int32_t>{cls, cls, sep, sep});
  // Special tokens are not normalised: "[mask]" is punctuation + word + punctuation.
  check_tokens(false, "a [mask] b", {"a", "[", "mask", "]", "b"});
  check_tokens(true, "a [MASK ] b", {"a", "[", "MA", "##S", "##K", "]", "b"});
}

TEST_CASE("tokenizer: WordPiece on a small vocabulary") {
  const std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nba\n##na\na\n##\xf0\x9d\x85\xa5\n##\xf0\x9d\x85\xad\n";
  TokenizerConfig cfg;
  cfg.lowercase = true;
  cfg.strip_accents = true;
  const WordPieceTokenizer tok(vocab, cfg);
  // Greedy longest match from the left ("ba" "##na" "##na"); a word whose start cannot be matched
  // ("nanana": "na" exists only as a continuation) is one [UNK], not a partial result.
  CHECK(tok.encode("banana") == std::vector<int32_t>{2, 4, 5, 5, 3});
  CHECK(tok.encode("nanana banana") == std::vector<int32_t>{2, 1, 4, 5, 5, 3});
  CHECK(tok.encode("banan") == std::vector<int32_t>{2, 1, 3});
  // NFD puts combining marks in canonical order: U+1D16D (ccc 226) after U+1D165 (ccc 216). Both
  // are Mc, so strip_accents keeps them, in the reordered order.
  const std::string marks = "a\xf0\x9d\x85\xad\xf0\x9d\x85\xa5";  // a U+1D16D U+1D165
  CHECK(tok.encode(marks) == std::vector<int32_t>{2, 6, 7, 8, 3});
  TokenizerConfig keep = cfg;
  keep.strip_accents = false;  // no NFD: the input order stays
  CHECK(WordPieceTokenizer(vocab, keep).encode(marks) == std::vector<int32_t>{2, 6, 8, 7, 3});
  CHECK(tok.vocab_size() == 9);
  CHECK(tok.unk_id() == 1);
  CHECK(tok.cls_id() == 2);
  CHECK(tok.sep_id() == 3);
  CHECK(tok.pad_id() == 0);
}

TEST_CASE("tokenizer: words of 100 characters are split, 101 characters are [UNK]") {
  // Greedy: uncased has "aaa" and "##aa"; cased has only "a"... for word starts and "##aa".
  std::vector<std::string> uncased{"aaa"}, cased{"a"};
  for (int i = 0; i < 48; ++i) uncased.push_back("##aa"), cased.push_back("##aa");
  uncased.push_back("##a");
  cased.push_back("##aa");
  cased.push_back("##a");
  check_tokens(false, std::string(100, 'a'), uncased);
  check_tokens(true, std::string(100, 'a'), cased);
  check_tokens(false, std::string(101, 'a'), {"[UNK]"});
  check_tokens(true, std::string(101, 'a'), {"[UNK]"});
  check_tokens(false, std::string(10000, 'a') + " a", {"[UNK]", "a"});
  // The limit counts characters, not bytes: 100 × "é" (200 bytes) is not over it.
  const std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\né\n##é\n";
  TokenizerConfig cfg;
  const WordPieceTokenizer tok(vocab, cfg);
  std::vector<int32_t> want{2, 4};
  for (int i = 1; i < 100; ++i) want.push_back(5);
  want.push_back(3);
  CHECK(tok.encode(repeat("é", 100)) == want);
  CHECK(tok.encode(repeat("é", 101)) == std::vector<int32_t>{2, 1, 3});
}

TEST_CASE("tokenizer: invalid UTF-8 is an error naming the byte offset") {
  const struct {
    std::string bytes;
    size_t offset;
  } cases[] = {
      {"ab\x80", 2},                 // lone continuation byte
      {"\xC0\xAF", 0},               // overlong '/'
      {"x\xE0\x80\xAF", 1},          // overlong 3-byte form
      {"xy\xED\xA0\x80", 2},         // UTF-16 surrogate U+D800
      {"\xF4\x90\x80\x80", 0},       // U+110000
      {"abc\xE2\x82", 3},            // truncated at the end
      {"abc\xE2\x82x", 3},           // truncated before an ASCII byte
      {"\xFF", 0},                   // never valid
      {"ok \xF8\x88\x80\x80\x80", 3},  // 5-byte form
      {"[MASK]\xC3", 6},             // after a special token
  };
  for (const auto& c : cases) {
    for (bool truncate : {false, true}) {
      INFO("bytes: " << c.bytes.size() << ", expected offset " << c.offset);
      std::string message;
      try {
        bert(false).encode(c.bytes, truncate);
      } catch (const Error& e) {
        message = e.what();
      }
      CHECK(message == "invalid UTF-8 at byte offset " + std::to_string(c.offset));
    }
  }
  // Past the truncation point the text is still checked.
  CHECK_THROWS_WITH_AS(bert(false).encode(repeat("a ", 600) + "\xFF", true),
                       "invalid UTF-8 at byte offset 1200", Error);
  // The largest valid forms of each length decode.
  CHECK_NOTHROW(bert(false).encode("\x7F\xDF\xBF\xEF\xBF\xBF\xF4\x8F\xBF\xBF"));
  size_t pos = 0;
  CHECK(unicode::decode_utf8("\xF4\x8F\xBF\xBF", &pos) == 0x10FFFF);
  CHECK(pos == 4);
}

TEST_CASE("tokenizer: 510-513 tokens, the max_length limit and truncation") {
  // "a " × n is n word pieces; with [CLS] and [SEP], n + 2 tokens.
  for (bool cased : {true, false}) {
    const auto& tok = bert(cased);
    const int32_t a = vocab_file(cased).ids.at("a");
    for (int n : {508, 509, 510, 511, 512, 2000}) {
      INFO("n = " << n);
      const std::string text = repeat("a ", n);
      if (n + 2 <= 512) {
        const auto ids = tok.encode(text);
        CHECK(ids.size() == size_t(n + 2));
        CHECK(ids == tok.encode(text, true));
      } else {
        CHECK_THROWS_WITH_AS(tok.encode(text),
                             ("text is " + std::to_string(n + 2) +
                              " tokens long with [CLS] and [SEP], over max_length 512 (truncate "
                              "to keep the first 510 word pieces)")
                                 .c_str(),
                             Error);
        const auto ids = tok.encode(text, true);
        REQUIRE(ids.size() == 512);
        CHECK(ids.front() == tok.cls_id());
        CHECK(ids.back() == tok.sep_id());
        for (size_t i = 1; i < 511; ++i) CHECK(ids[i] == a);
      }
    }
  }
  // A word whose pieces straddle the limit is cut inside the word, as HF's truncation does.
  TokenizerConfig cfg = bert_config(false, 6);
  const WordPieceTokenizer tok(vocab_file(false).text, cfg);
  CHECK(tok.encode(std::string(100, 'a'), true) == expect(false, {"aaa", "##aa", "##aa", "##aa"}));
  CHECK_THROWS_AS(tok.encode(std::string(100, 'a')), Error);
}

TEST_CASE("tokenizer: vocabulary problems are errors; CRLF and a BOM are tolerated") {
  const std::string base = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##s\n";
  TokenizerConfig cfg;
  const WordPieceTokenizer lf(base, cfg);
  CHECK(lf.encode("hellos [MASK]") == std::vector<int32_t>{2, 5, 6, 4, 3});
  // CRLF line ends and a UTF-8 BOM give the same ids; no trailing newline is fine too.
  std::string crlf;
  for (char ch : base) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  const WordPieceTokenizer from_crlf("\xEF\xBB\xBF" + crlf, cfg);
  CHECK(from_crlf.vocab_size() == 7);
  CHECK(from_crlf.encode("hellos [MASK]") == lf.encode("hellos [MASK]"));
  CHECK(WordPieceTokenizer(base.substr(0, base.size() - 1), cfg).vocab_size() == 7);

  CHECK_THROWS_WITH_AS(WordPieceTokenizer("[PAD]\n[UNK]\nhello\n", cfg),
                       "vocab (3 tokens) lacks the special token(s) [CLS], [SEP]", Error);
  CHECK_THROWS_WITH_AS(WordPieceTokenizer("", cfg),
                       "vocab (0 tokens) lacks the special token(s) [UNK], [CLS], [SEP], [PAD]",
                       Error);
  CHECK_THROWS_WITH_AS(WordPieceTokenizer(base + "x\nhello\n", cfg),
                       "vocab line 9: token \"hello\" repeats line 6", Error);
  CHECK_THROWS_WITH_AS(WordPieceTokenizer(base + "x\xC3\n", cfg),
                       "vocab line 8: invalid UTF-8 at byte offset 1", Error);
  // [MASK] is optional; without it "[MASK]" in a text is ordinary punctuation and letters.
  const WordPieceTokenizer no_mask("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[\n]\nmask\n", cfg);
  CHECK(no_mask.encode("[MASK]") == std::vector<int32_t>{2, 4, 1, 5, 3});
  // Custom special token strings are honoured.
  TokenizerConfig custom = cfg;
  custom.cls_token = "<s>";
  custom.sep_token = "</s>";
  const WordPieceTokenizer angle("[PAD]\n[UNK]\n<s>\n</s>\nhi\n", custom);
  CHECK(angle.encode("hi</s>") == std::vector<int32_t>{2, 4, 3, 3});
  TokenizerConfig bad = cfg;
  bad.max_length = 1;
  CHECK_THROWS_AS(WordPieceTokenizer(base, bad), Error);
}

TEST_CASE("tokenizer: config JSON round trip and validation") {
  TokenizerConfig c;
  c.lowercase = true;
  c.strip_accents = false;
  c.tokenize_chinese_chars = false;
  c.max_length = 128;
  c.unk_token = "<unk>";
  const TokenizerConfig back = TokenizerConfig::from_json(c.to_json());
  CHECK(back.lowercase == true);
  CHECK(back.strip_accents == false);
  CHECK(back.tokenize_chinese_chars == false);
  CHECK(back.max_length == 128);
  CHECK(back.unk_token == "<unk>");
  CHECK(back.cls_token == "[CLS]");
  CHECK(back.max_input_chars_per_word == 100);
  CHECK(back.to_json() == c.to_json());

  // strip_accents absent or null follows lowercase, as in HF.
  CHECK(TokenizerConfig::from_json(R"({"lowercase": true})").strip_accents == true);
  CHECK(TokenizerConfig::from_json(R"({"lowercase": true, "strip_accents": null})").strip_accents);
  CHECK(!TokenizerConfig::from_json(R"({"lowercase": false, "strip_accents": null})").strip_accents);

  const std::pair<const char*, const char*> bad[] = {
      {"", "not valid JSON"},
      {"[]", "expected a JSON object, got array"},
      {"{}", "\"lowercase\" is missing"},
      {R"({"lowercase": 1})", "\"lowercase\" must be true or false"},
      {R"({"lowercase": true, "max_length": "512"})", "\"max_length\" must be a 32-bit integer"},
      {R"({"lowercase": true, "max_length": 1e300})", "\"max_length\" must be a 32-bit integer"},
      {R"({"lowercase": true, "max_length": 5000000000})", "must be a 32-bit integer"},
      {R"({"lowercase": true, "max_length": 1})", "max_length 1 is out of range"},
      {R"({"lowercase": true, "cls_token": ""})", "cls_token is empty"},
      {R"({"lowercase": true, "cls_token": 5})", "\"cls_token\" must be a string"},
      {R"({"lowercase": true, "clean_text": false})", "unknown key \"clean_text\""},
      {R"({"lowercase": true, "lowercase": false})", "key \"lowercase\" appears twice"},
      {R"({"lowercase": true, "x": [[[[1]]]]})", "nested too deeply"},
      {R"({"lowercase": true} x)", "not valid JSON"},
  };
  for (const auto& [text, reason] : bad) {
    INFO("json: " << text);
    std::string message;
    try {
      TokenizerConfig::from_json(text);
    } catch (const Error& e) {
      message = e.what();
    }
    CHECK(message.find(reason) != std::string::npos);
    CHECK(message.rfind("tokenizer config: ", 0) == 0);
  }
  // 10^5 nested arrays: rejected by the depth guard without deep recursion.
  CHECK_THROWS_AS(TokenizerConfig::from_json("{\"a\":" + std::string(100000, '[')), Error);
}

TEST_CASE("tokenizer: a 10 MB line, a 10 MB word and 5 M combining marks finish") {
  // Time is not asserted; the point is linear work and no recursion. Ids are checked exactly.
  const auto& tok = bert(false);
  const std::string chunk = "The quick brown fox, naïve café 東京! ";
  const auto chunk_ids = tok.encode(chunk);  // [CLS] pieces [SEP]
  const size_t per_chunk = chunk_ids.size() - 2;
  const size_t reps = (10u << 20) / chunk.size();
  const std::string big = repeat(chunk, reps);
  TokenizerConfig cfg = bert_config(false, 1 << 24);
  const WordPieceTokenizer unlimited(vocab_file(false).text, cfg);
  auto t0 = std::chrono::steady_clock::now();
  const auto ids = unlimited.encode(big);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("10 MB line: " << ids.size() << " ids in " << secs << " s");
  REQUIRE(ids.size() == reps * per_chunk + 2);
  CHECK(std::equal(chunk_ids.begin() + 1, chunk_ids.end() - 1, ids.begin() + 1));
  CHECK(std::equal(chunk_ids.begin() + 1, chunk_ids.end() - 1, ids.end() - 1 - per_chunk));
  // Over the default limit: an error that counts every token; with truncation the first 510.
  CHECK_THROWS_WITH_AS(tok.encode(big),
                       ("text is " + std::to_string(ids.size()) +
                        " tokens long with [CLS] and [SEP], over max_length 512 (truncate to keep "
                        "the first 510 word pieces)")
                           .c_str(),
                       Error);
  CHECK(tok.encode(big, true).size() == 512);
  // One 10 MB word is a single [UNK].
  CHECK(tok.encode(std::string(10u << 20, 'x')) == expect(false, {"[UNK]"}));
  // A starter followed by 5 M combining acute accents (10 MB): stripped when uncased, one
  // over-long word when cased.
  const std::string marks = "e" + repeat("\u0301", 5u << 20) + " x";
  CHECK(tok.encode(marks) == expect(false, {"e", "x"}));
  CHECK(bert(true).encode(marks) == expect(true, {"[UNK]", "x"}));
  // 10 MB of ideographs: each is a word; truncation stops early.
  CHECK(tok.encode(repeat("北", (10u << 20) / 3), true).size() == 512);
}

TEST_CASE("tokenizer: one tokenizer used from several threads gives the same ids") {
  const auto& tok = bert(false);
  const std::string text = read_file(test::shared_path("data/tokenizer-reference/Metal_umlaut.txt"));
  const auto want = tok.encode(text, true);
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) got[t] = tok.encode(text, true);
    });
  for (auto& th : threads) th.join();
  for (const auto& g : got) CHECK(g == want);
}
