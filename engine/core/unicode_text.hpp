#pragma once
// Unicode helpers for the BERT tokenizer: strict UTF-8 decoding and the character classes of
// Hugging Face's `tokenizers` (BertNormalizer, BertPreTokenizer). Tables come from libutf8proc
// (Unicode 15); the few rules HF takes from elsewhere are spelled out beside each function.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tern::unicode {

// Decodes the code point starting at s[*pos] and advances *pos past it. Rejects what Rust's
// str::from_utf8 rejects (stray continuation bytes, overlong forms, surrogates, > U+10FFFF,
// truncated sequences, 0xF8..0xFF) with tern::Error "invalid UTF-8 at byte offset N", where N is
// *pos + base_offset, the first byte of the bad sequence.
char32_t decode_utf8(std::string_view s, size_t* pos, size_t base_offset = 0);

// Throws as decode_utf8 does for the first invalid sequence in s.
void validate_utf8(std::string_view s, size_t base_offset = 0);

void append_utf8(std::string* out, char32_t cp);

// Rust's char::is_whitespace: the Unicode White_Space property (utf8proc has no table for it;
// the list is short and has been stable since Unicode 6.3). HF's BERT is_whitespace is the same
// set, since \t \n \r are White_Space too.
bool is_whitespace(char32_t c);

// HF BertNormalizer's is_control: what the `unicode_categories` crate calls is_other(), minus \t
// \n \r. That crate's is_other() is Cc | Cf | Co (not Cn: unassigned code points are kept). Its
// tables predate utf8proc's (Unicode 15), so characters assigned since may be classed
// differently.
bool is_bert_control(char32_t c);

// HF BertPreTokenizer's punctuation: ASCII punctuation (33-47, 58-64, 91-96, 123-126, which
// includes symbols such as $ + < = > ^ ` | ~) or general category P*.
bool is_bert_punctuation(char32_t c);

// HF BertNormalizer's "Chinese character" ranges (CJK Unified Ideographs and extensions A-E,
// compatibility ideographs), which get a space on each side.
bool is_cjk_ideograph(char32_t c);

bool is_nonspacing_mark(char32_t c);  // general category Mn
int combining_class(char32_t c);      // canonical combining class, 0 for starters

// Canonical (NFD) decomposition of one code point, without reordering. Writes at most
// kMaxDecomposition code points to out and returns how many.
constexpr int kMaxDecomposition = 8;
int nfd_decompose(char32_t c, char32_t* out);

// Rust's char::to_lowercase: the simple mapping of UnicodeData plus the one unconditional
// multi-character lowercase mapping of SpecialCasing.txt, U+0130 -> U+0069 U+0307. Writes one or
// two code points and returns how many.
int to_lowercase(char32_t c, char32_t* out);

}  // namespace tern::unicode
