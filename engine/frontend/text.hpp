#pragma once
// Strings from the outside world (file names, texts, metadata) made safe to print.
//
// - Messages (stderr): printable() escapes what would break a one-line message or a terminal:
//   '\n' '\r' '\t' as \n \r \t, other control characters (C0, DEL) and every byte that is not
//   part of valid UTF-8 as \xNN. Valid UTF-8 and backslashes stay as they are.
// - JSON (stdout, .jsonl): json_string() writes valid UTF-8 JSON always: the JSON escapes for
//   '"', '\\' and control characters, and each byte that is not part of valid UTF-8 replaced by
//   U+FFFD (the replacement character), as Python's errors="replace" does. The output keeps
//   the input's order, so an input whose name had invalid bytes is still found by its position.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tern::frontend {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 when the bytes there are not
// valid UTF-8 (bad lead byte, bad or missing continuation, overlong form, surrogate, > U+10FFFF).
size_t utf8_sequence_length(std::string_view s, size_t i);
// Offset of the first byte that is not part of valid UTF-8, or npos.
size_t first_invalid_utf8(std::string_view s);

std::string printable(std::string_view s);
// One-line message: printable() of every part of it (used on whole error messages).
inline std::string one_line(std::string_view message) {
  return printable(message);
}

void append_json_string(std::string& out, std::string_view s);
inline std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace tern::frontend
