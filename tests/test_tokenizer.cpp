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
