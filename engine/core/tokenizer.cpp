// BERT WordPiece tokenizer. The pipeline is Hugging Face `tokenizers`' BertNormalizer (clean text,
// pad CJK ideographs, NFD + drop Mn when strip_accents, lowercase), BertPreTokenizer (split on
// whitespace, isolate punctuation), WordPiece (greedy longest match, "##" continuations, [UNK] for
// a word that cannot be covered or is over max_input_chars_per_word) and the post-processor
// [CLS] $A [SEP]. It runs as one streaming pass over the code points: no regex, no recursion, and
// memory proportional to the output plus the longest run of combining marks.
#include "engine/core/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "engine/core/error.hpp"
#include "engine/core/unicode_text.hpp"

namespace tern {

// One encode() call: the normaliser, pre-tokenizer and WordPiece stages, each feeding the next.
class TokenizerRun {
 public:
  TokenizerRun(const WordPieceTokenizer& tok, size_t piece_limit)
      : tok_(tok), cfg_(tok.config_), limit_(piece_limit) {
    ids_.reserve(std::min<size_t>(piece_limit, 1024) + 2);
    ids_.push_back(tok.cls_id_);
  }

  // A code point of the input text (BertNormalizer's clean text and CJK padding).
  void feed(char32_t c) {
    if (c == 0 || c == 0xFFFD || unicode::is_bert_control(c)) return;
    if (unicode::is_whitespace(c)) c = ' ';
    if (cfg_.tokenize_chinese_chars && unicode::is_cjk_ideograph(c)) {
      strip_accents(' ');
      strip_accents(c);
      strip_accents(' ');
    } else {
      strip_accents(c);
    }
  }

  // A special token found in the raw text: it ends the current word and stands alone.
  void special(int32_t id) {
    finish();
    emit(id);
  }

  void finish() {
    flush_combining_run();
    end_word();
  }

  bool full() const { return pieces_ >= limit_; }
  size_t pieces() const { return pieces_; }
  std::vector<int32_t> take_ids() { return std::move(ids_); }

 private:
  // NFD needs canonical ordering: the combining marks (ccc != 0) after a starter are stably
  // sorted by combining class. run_ holds the latest starter and the marks after it.
  void strip_accents(char32_t c) {
    if (!cfg_.strip_accents) return lowercase(c);
    if (c < 0xC0) {  // no decomposition, combining class 0, not a mark
      flush_combining_run();
      return lowercase(c);
    }
    char32_t parts[unicode::kMaxDecomposition];
    const int n = unicode::nfd_decompose(c, parts);
    for (int k = 0; k < n; ++k) {
      if (unicode::combining_class(parts[k]) == 0) flush_combining_run();
      run_.push_back(parts[k]);
    }
  }

  void flush_combining_run() {
    if (run_.empty()) return;
    // run_ is [starter] mark*, or only marks at the start of the text or after a starter that
    // did not go through run_ (below U+00C0).
    auto first_mark = run_.begin() + (unicode::combining_class(run_[0]) == 0 ? 1 : 0);
    if (run_.end() - first_mark > 1) {
      std::stable_sort(first_mark, run_.end(), [](char32_t a, char32_t b) {
        return unicode::combining_class(a) < unicode::combining_class(b);
      });
    }
    for (char32_t c : run_)
      if (!unicode::is_nonspacing_mark(c)) lowercase(c);
    run_.clear();
  }

  void lowercase(char32_t c) {
    if (!cfg_.lowercase) return pre_tokenize(c);
    char32_t lower[2];
    const int n = unicode::to_lowercase(c, lower);
    for (int k = 0; k < n; ++k) pre_tokenize(lower[k]);
  }

  // BertPreTokenizer: whitespace separates words and is dropped; punctuation is a word alone.
  void pre_tokenize(char32_t c) {
    if (unicode::is_whitespace(c)) return end_word();
    if (unicode::is_bert_punctuation(c)) {
      end_word();
      unicode::append_utf8(&word_, c);
      word_chars_ = 1;
      return end_word();
    }
    unicode::append_utf8(&word_, c);
    ++word_chars_;
  }

  void end_word() {
    if (word_.empty()) return;
    wordpiece();
    word_.clear();
    word_chars_ = 0;
  }

  // Greedy longest match from the left; pieces after the first carry the "##" prefix. A word
  // longer than max_input_chars_per_word characters, or with a stretch no piece matches, is one
  // [UNK]. Candidates never exceed the longest vocabulary entry, so the search per piece is
  // bounded by the vocabulary, not by the word.
  void wordpiece() {
    if (word_chars_ > static_cast<size_t>(cfg_.max_input_chars_per_word)) return emit(tok_.unk_id_);
    const std::string_view word = word_;
    piece_ids_.clear();
    size_t start = 0;
    while (start < word.size()) {
      size_t end = std::min(word.size(), start + tok_.max_token_bytes_);
      int32_t found = -1;
      while (end > start) {
        while (end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
        if (end == start) break;
        candidate_.assign(start > 0 ? "##" : "");
        candidate_.append(word.substr(start, end - start));
        auto it = tok_.ids_.find(candidate_);
        if (it != tok_.ids_.end()) {
          found = it->second;
          break;
        }
        --end;  // then back to the previous character boundary
      }
      if (found < 0) return emit(tok_.unk_id_);
      piece_ids_.push_back(found);
      start = end;
    }
    for (int32_t id : piece_ids_) emit(id);
  }

  void emit(int32_t id) {
    if (pieces_ < limit_) ids_.push_back(id);
    ++pieces_;
  }

  const WordPieceTokenizer& tok_;
  const TokenizerConfig& cfg_;
  const size_t limit_;
  size_t pieces_ = 0;
  std::vector<int32_t> ids_;
  std::vector<char32_t> run_;
  std::string word_;
  size_t word_chars_ = 0;
  std::string candidate_;
  std::vector<int32_t> piece_ids_;
};

namespace {

void check_config(const TokenizerConfig& c) {
  if (c.max_length < 2 || c.max_length > (1 << 24))
    fail("tokenizer config: max_length ", c.max_length, " is out of range [2, 16777216]");
  if (c.max_input_chars_per_word < 1)
    fail("tokenizer config: max_input_chars_per_word ", c.max_input_chars_per_word,
         " must be at least 1");
  const std::pair<const char*, const std::string*> tokens[] = {
      {"unk_token", &c.unk_token}, {"cls_token", &c.cls_token}, {"sep_token", &c.sep_token},
      {"pad_token", &c.pad_token}, {"mask_token", &c.mask_token}};
  for (const auto& [key, value] : tokens) {
    if (value->empty()) fail("tokenizer config: ", key, " is empty");
    if (value->find('\n') != std::string::npos || value->find('\r') != std::string::npos)
      fail("tokenizer config: ", key, " contains a line break");
    try {
      unicode::validate_utf8(*value);
    } catch (const Error& e) {
      fail("tokenizer config: ", key, ": ", e.what());
    }
  }
}

}  // namespace

TokenizerConfig TokenizerConfig::from_json(const std::string& json_text) {
  using nlohmann::json;
  constexpr size_t kMaxBytes = 1 << 20;
  if (json_text.size() > kMaxBytes)
    fail("tokenizer config: ", json_text.size(), " bytes of JSON, over the limit of ", kMaxBytes);
  // The callback bounds nesting (the value is a flat object) and rejects repeated keys, which
  // nlohmann would otherwise resolve silently by keeping the last.
  std::unordered_set<std::string> seen;
  json::parser_callback_t guard = [&seen](int depth, json::parse_event_t event, json& parsed) {
    if (depth > 2) fail("tokenizer config: JSON nested too deeply (expected a flat object)");
    if (event == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second)
      fail("tokenizer config: key \"", parsed.get<std::string>(), "\" appears twice");
    return true;
  };
  json j;
  try {
    j = json::parse(json_text, guard);
  } catch (const json::exception& e) {
    fail("tokenizer config: not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail("tokenizer config: expected a JSON object, got ", j.type_name());

  TokenizerConfig c;
  auto get_bool = [](const json& v, const std::string& key) {
    if (!v.is_boolean()) fail("tokenizer config: \"", key, "\" must be true or false, got ", v.dump());
    return v.get<bool>();
  };
  auto get_int = [](const json& v, const std::string& key) {
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX)
      fail("tokenizer config: \"", key, "\" must be a 32-bit integer, got ", v.dump());
    return static_cast<int>(v.get<int64_t>());
  };
  auto get_string = [](const json& v, const std::string& key) {
    if (!v.is_string()) fail("tokenizer config: \"", key, "\" must be a string, got ", v.dump());
    return v.get<std::string>();
  };
  if (!j.contains("lowercase")) fail("tokenizer config: \"lowercase\" is missing");
  bool strip_accents_null = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "lowercase") c.lowercase = get_bool(v, key);
    else if (key == "strip_accents") {
      if (v.is_null()) strip_accents_null = true;
      else c.strip_accents = get_bool(v, key);
    } else if (key == "tokenize_chinese_chars") c.tokenize_chinese_chars = get_bool(v, key);
    else if (key == "max_length") c.max_length = get_int(v, key);
    else if (key == "max_input_chars_per_word") c.max_input_chars_per_word = get_int(v, key);
    else if (key == "unk_token") c.unk_token = get_string(v, key);
    else if (key == "cls_token") c.cls_token = get_string(v, key);
    else if (key == "sep_token") c.sep_token = get_string(v, key);
    else if (key == "pad_token") c.pad_token = get_string(v, key);
    else if (key == "mask_token") c.mask_token = get_string(v, key);
    else fail("tokenizer config: unknown key \"", key, "\"");
  }
  if (!j.contains("strip_accents") || strip_accents_null) c.strip_accents = c.lowercase;
  check_config(c);
  return c;
}

std::string TokenizerConfig::to_json() const {
  nlohmann::ordered_json j;
  j["lowercase"] = lowercase;
  j["strip_accents"] = strip_accents;
  j["tokenize_chinese_chars"] = tokenize_chinese_chars;
  j["max_length"] = max_length;
  j["max_input_chars_per_word"] = max_input_chars_per_word;
  j["unk_token"] = unk_token;
  j["cls_token"] = cls_token;
  j["sep_token"] = sep_token;
  j["pad_token"] = pad_token;
  j["mask_token"] = mask_token;
  return j.dump();
}

WordPieceTokenizer::WordPieceTokenizer(const std::string& vocab_text, const TokenizerConfig& config)
    : config_(config) {
  check_config(config_);
  std::string_view rest = vocab_text;
  size_t line_no = 0;
  while (!rest.empty()) {
    ++line_no;
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    try {
      unicode::validate_utf8(line);
    } catch (const Error& e) {
      fail("vocab line ", line_no, ": ", e.what());
    }
    if (vocab_.size() >= static_cast<size_t>(INT32_MAX)) fail("vocab: more than 2^31-1 tokens");
    const auto [it, inserted] = ids_.emplace(std::string(line), static_cast<int32_t>(vocab_.size()));
    if (!inserted)
      fail("vocab line ", line_no, ": token \"", line, "\" repeats line ", it->second + 1);
    vocab_.emplace_back(line);
    max_token_bytes_ = std::max(max_token_bytes_, line.size());
  }
  std::string missing;
  auto find = [&](const std::string& token, int32_t* id) {
    auto it = ids_.find(token);
    if (it == ids_.end()) {
      missing += (missing.empty() ? "" : ", ") + token;
      return;
    }
    *id = it->second;
    special_tokens_.emplace_back(token, it->second);
  };
  find(config_.unk_token, &unk_id_);
  find(config_.cls_token, &cls_id_);
  find(config_.sep_token, &sep_id_);
  find(config_.pad_token, &pad_id_);
  if (!missing.empty())
    fail("vocab (", vocab_.size(), " tokens) lacks the special token(s) ", missing);
  // [MASK] is optional: a vocabulary without it only loses the literal "[MASK]" match.
  if (auto it = ids_.find(config_.mask_token); it != ids_.end())
    special_tokens_.emplace_back(config_.mask_token, it->second);
  // Longest first, so that at any position the longest special token wins (HF: leftmost-longest).
  std::stable_sort(special_tokens_.begin(), special_tokens_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool truncate) const {
  const size_t limit = static_cast<size_t>(config_.max_length) - 2;
  std::array<bool, 256> special_start{};
  for (const auto& [token, id] : special_tokens_)
    special_start[static_cast<unsigned char>(token[0])] = true;

  TokenizerRun run(*this, limit);
  size_t pos = 0;
  while (pos < text.size()) {
    if (truncate && run.full()) {  // nothing later can change the kept pieces; still validate
      unicode::validate_utf8(text.substr(pos), pos);
      break;
    }
    if (special_start[static_cast<unsigned char>(text[pos])]) {
      bool matched = false;
      for (const auto& [token, id] : special_tokens_) {
        if (text.compare(pos, token.size(), token) == 0) {
          run.special(id);
          pos += token.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    run.feed(unicode::decode_utf8(text, &pos));
  }
  run.finish();
  if (run.pieces() > limit && !truncate)
    fail("text is ", run.pieces() + 2, " tokens long with ", config_.cls_token, " and ",
         config_.sep_token, ", over max_length ", config_.max_length,
         " (truncate to keep the first ", limit, " word pieces)");
  std::vector<int32_t> ids = run.take_ids();
  ids.push_back(sep_id_);
  return ids;
}

}  // namespace tern
