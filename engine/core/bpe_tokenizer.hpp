#pragma once
// CLIP's byte-level BPE tokenizer, as OpenAI's `clip.tokenize` (simple_tokenizer.py) runs it:
//   1. HTML unescape, twice (html.unescape(html.unescape(text))), then strip;
//   2. whitespace runs -> one space, strip; lowercase (Python's str.lower, final sigma included);
//   3. the pre-split of its pattern
//        <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//      implemented by hand as one left-to-right scan (no regex engine on input);
//   4. each piece's UTF-8 bytes mapped to unicode characters (GPT-2's bytes_to_unicode), "</w>"
//      on its last character, BPE merges applied lowest rank first;
//   5. <|startoftext|> ids <|endoftext|>, at most max_length (77) ids: over it is an error, or
//      with truncate the first max_length - 1 ids followed by <|endoftext|>.
// Differences from OpenAI's code: no ftfy (not packaged for Debian; see the README), and the HTML
// unescape knows the common named entities only (docs/FORMAT.md lists them; numeric references
// follow Python's rules in full). Invalid UTF-8 is a tern::Error naming the byte offset. Time is
// O(n log n) in the text length (a heap of candidate merges per word), no recursion.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/core/tokenizer.hpp"

namespace tern {

struct BpeConfig {
  int max_length = 77;  // ids per text, start and end tokens included
  std::string bos_token = "<|startoftext|>", eos_token = "<|endoftext|>";
  std::string pad_token = "";  // "" = id 0, as OpenAI pads

  // The weight file's "tokenizer" for a BPE model: {"type": "bpe", "max_length": 77,
  // "bos_token": ..., "eos_token": ..., "pad_token": ...} ("type" required, the rest optional).
  // Unknown keys and wrong types are a tern::Error naming the key.
  static BpeConfig from_json(const std::string& json_text);
  std::string to_json() const;
};

class BpeTokenizer final : public TextTokenizer {
 public:
  // vocab_text: one token a line, line i = id i, in the byte-to-unicode alphabet (the weight
  // file's "vocab"). merges_text: one merge "A B" a line, highest priority first (merges.txt
  // without its "#version" line; the file's "merges"). Throws when a merge names a token the
  // vocabulary lacks, when a byte (alone or with "</w>") has no token, or when the special tokens
  // are missing.
  BpeTokenizer(const std::string& vocab_text, const std::string& merges_text,
               const BpeConfig& config);

  std::vector<int32_t> encode(std::string_view text, bool truncate) const override;
  int max_length() const override { return config_.max_length; }
  int32_t pad_id() const override { return pad_id_; }
  size_t vocab_size() const override { return vocab_.size(); }
  const std::string& token(int32_t id) const override {
    return vocab_.at(static_cast<size_t>(id));
  }
  bool is_special(int32_t id) const override { return id == bos_id_ || id == eos_id_; }

  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  const BpeConfig& config() const { return config_; }

  // Steps 1-2 alone (for tests): the text the pre-split sees.
  static std::string normalize(std::string_view text);

 private:
  struct Merge {
    int32_t rank, result;
  };
  // Appends the BPE ids of one pre-split piece (raw UTF-8 bytes) to out.
  void bpe_piece(std::string_view piece, std::vector<int32_t>* out) const;

  BpeConfig config_;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, merged id
  int32_t byte_id_[256], byte_end_id_[256];     // a byte's character, alone and with "</w>"
  int32_t bos_id_ = 0, eos_id_ = 0, pad_id_ = 0;
};

}  // namespace tern
