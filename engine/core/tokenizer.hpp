#pragma once
// BERT WordPiece tokenizer, identical to Hugging Face's fast tokenizer (BertNormalizer +
// BertPreTokenizer + WordPiece). Input is UTF-8; invalid UTF-8 is a tern::Error naming the byte
// offset. No recursion or regex on input; linear time.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tern {

struct TokenizerConfig {
  bool lowercase = false;
  bool strip_accents = false;  // HF: None means "same as lowercase"; resolved at export
  bool tokenize_chinese_chars = true;
  int max_length = 512;        // including [CLS] and [SEP]
  std::string unk_token = "[UNK]", cls_token = "[CLS]", sep_token = "[SEP]",
              pad_token = "[PAD]", mask_token = "[MASK]";
  int max_input_chars_per_word = 100;

  // The weight file's "tokenizer": a JSON object with the fields above as keys. "lowercase" is
  // required; "strip_accents" may be null (= lowercase, as in HF); the rest default as above.
  // Unknown keys, wrong types and out-of-range values are a tern::Error naming the key.
  static TokenizerConfig from_json(const std::string& json_text);
  std::string to_json() const;
};

// What the API needs of a text model's tokenizer, whichever algorithm it runs.
class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // The ids the model sees, start and end tokens included. Over max_length(): tern::Error, or cut
  // to max_length() keeping the end token when truncate.
  virtual std::vector<int32_t> encode(std::string_view text, bool truncate) const = 0;
  virtual int max_length() const = 0;
  virtual int32_t pad_id() const = 0;
  virtual size_t vocab_size() const = 0;
  // The vocabulary entry of an id in [0, vocab_size()), and whether it is a special token (start,
  // end, padding, mask; not the unknown token).
  virtual const std::string& token(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
};

class WordPieceTokenizer final : public TextTokenizer {
 public:
  // vocab_text: one token per line (the weight file's "vocab"). Throws when special tokens are
  // missing or lines repeat.
  WordPieceTokenizer(const std::string& vocab_text, const TokenizerConfig& config);

  // [CLS] tokens [SEP]. Over max_length: tern::Error, or cut to max_length when truncate.
  // As in HF, special tokens written literally in the text ("[MASK]") are matched before
  // normalisation and map to their ids.
  std::vector<int32_t> encode(std::string_view text, bool truncate = false) const override;
  int max_length() const override { return config_.max_length; }

  const TokenizerConfig& config() const { return config_; }
  int32_t pad_id() const override { return pad_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  int32_t unk_id() const { return unk_id_; }
  size_t vocab_size() const override { return vocab_.size(); }
  const std::string& token(int32_t id) const override {
    return vocab_.at(static_cast<size_t>(id));
  }
  // [CLS], [SEP], [PAD], [MASK] (not [UNK], which WordPiece also gives for unknown words).
  bool is_special(int32_t id) const override {
    for (const auto& [text, sid] : special_tokens_)
      if (sid == id && sid != unk_id_) return true;
    return false;
  }

 private:
  TokenizerConfig config_;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t pad_id_ = 0, cls_id_ = 0, sep_id_ = 0, unk_id_ = 0;
  size_t max_token_bytes_ = 0;  // longest vocabulary entry: bounds the greedy WordPiece search
  std::vector<std::pair<std::string, int32_t>> special_tokens_;  // matched in the raw text
  friend class TokenizerRun;
};

}  // namespace tern
