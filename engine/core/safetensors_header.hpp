#pragma once
// A strict reader for the JSON header of a safetensors file, for untrusted input.
//
// It knows the header's fixed structure and nothing else, so it needs no recursion and builds no
// DOM: the top level is an object whose values are either tensor entries
//   {"dtype": STRING, "shape": [UINT, ...], "data_offsets": [UINT, UINT]}
// or, under the key "__metadata__", an object of STRING -> STRING. Anything else (other value
// types, deeper nesting, unknown fields, duplicate keys at any level, numbers that are negative,
// fractional, in exponent form or above 2^64-1, invalid UTF-8, raw control characters, lone
// surrogates, bytes after the closing brace other than whitespace) is a tern::Error whose message
// names the byte offset inside the header. Time and memory are linear in the header size.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern {

struct HeaderEntry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  bool has_metadata = false;
  std::vector<std::pair<std::string, std::string>> metadata;  // in file order, keys unique
  std::vector<HeaderEntry> entries;                           // in file order, names unique
};

// `json` is the header text (without the 8-byte length prefix). `max_rank` bounds shape arrays
// while they are read, so a huge shape cannot allocate much.
SafetensorsHeader parse_safetensors_header(std::string_view json, size_t max_rank = 8);

// `s` in single quotes for an error message: at most 80 bytes, non-printable bytes as \xNN.
std::string quoted(std::string_view s);

}  // namespace tern
