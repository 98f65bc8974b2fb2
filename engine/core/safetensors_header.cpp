#include "engine/core/safetensors_header.hpp"

#include <unordered_set>

#include "engine/core/error.hpp"

namespace tern {

std::string quoted(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

namespace {

class HeaderParser {
 public:
  HeaderParser(std::string_view text, size_t max_rank) : text_(text), max_rank_(max_rank) {}

  SafetensorsHeader parse() {
    SafetensorsHeader out;
    skip_ws();
    expect('{', "the header to be a JSON object");
    std::unordered_set<std::string> names;
    skip_ws();
    if (!consume('}')) {
      for (;;) {
        skip_ws();
        const size_t key_pos = pos_;
        std::string key = parse_string("a tensor name");
        skip_ws();
        expect(':', "':' after a key");
        skip_ws();
        if (!names.insert(key).second) {
          pos_ = key_pos;
          error(key == "__metadata__" ? std::string("duplicate __metadata__")
                                      : "duplicate tensor name " + quoted(key));
        }
        if (key == "__metadata__") {
          out.has_metadata = true;
          parse_metadata(&out.metadata);
        } else {
          out.entries.push_back(parse_entry(std::move(key)));
        }
        skip_ws();
        if (consume('}')) break;
        expect(',', "',' or '}' in the header object");
      }
    }
    skip_ws();
    if (pos_ != text_.size()) error("unexpected bytes after the end of the JSON object");
    return out;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail("header: ", what, " at byte ", pos_, " of the header");
  }

  void skip_ws() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c, const char* what) {
    if (!consume(c)) {
      if (pos_ >= text_.size()) error(std::string("unexpected end, expected ") + what);
      error(std::string("expected ") + what + ", found " + describe_here());
    }
  }

  std::string describe_here() const {
    const auto c = static_cast<unsigned char>(text_[pos_]);
    if (c == '{') return "an object";
    if (c == '[') return "an array";
    if (c == '"') return "a string";
    if (c == '-' || (c >= '0' && c <= '9')) return "a number";
    if (c == 't' || c == 'f') return "a boolean";
    if (c == 'n') return "null";
    if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
    static const char kHex[] = "0123456789abcdef";
    return std::string("byte 0x") + kHex[c >> 4] + kHex[c & 15];
  }

  unsigned hex4() {
    if (text_.size() - pos_ < 4) error("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else error("invalid \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Length of the valid UTF-8 sequence starting at pos_ (lead byte >= 0x80), or 0 when invalid:
  // overlong forms, surrogates and code points above U+10FFFF are rejected.
  size_t utf8_length() const {
    const auto* p = reinterpret_cast<const unsigned char*>(text_.data()) + pos_;
    const size_t left = text_.size() - pos_;
    auto cont = [&](size_t i) { return i < left && (p[i] & 0xC0) == 0x80; };
    const unsigned char b = p[0];
    if (b >= 0xC2 && b <= 0xDF) return cont(1) ? 2 : 0;
    if (b >= 0xE0 && b <= 0xEF) {
      if (!cont(1) || !cont(2)) return 0;
      if (b == 0xE0 && p[1] < 0xA0) return 0;   // overlong
      if (b == 0xED && p[1] >= 0xA0) return 0;  // surrogate
      return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) return 0;
      if (b == 0xF0 && p[1] < 0x90) return 0;  // overlong
      if (b == 0xF4 && p[1] >= 0x90) return 0;  // above U+10FFFF
      return 4;
    }
    return 0;
  }

  std::string parse_string(const char* what) {
    if (pos_ >= text_.size() || text_[pos_] != '"') {
      if (pos_ >= text_.size()) error(std::string("unexpected end, expected ") + what);
      error(std::string("expected ") + what + " (a string), found " + describe_here());
    }
    ++pos_;
    std::string out;
    for (;;) {
      if (pos_ >= text_.size()) error("unterminated string");
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) error("control character inside a string");
      if (c == '\\') {
        if (++pos_ >= text_.size()) error("unterminated string");
        const char e = text_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            uint32_t cp = hex4();
            if (cp >= 0xDC00 && cp <= 0xDFFF) error("lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (text_.size() - pos_ < 2 || text_[pos_] != '\\' || text_[pos_ + 1] != 'u')
                error("lone high surrogate in \\u escape");
              pos_ += 2;
              const uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) error("invalid surrogate pair in \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(&out, cp);
            break;
          }
          default:
            --pos_;
            error("invalid escape in a string");
        }
        continue;
      }
      if (c < 0x80) {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      const size_t n = utf8_length();
      if (n == 0) error("invalid UTF-8");
      out.append(text_.data() + pos_, n);
      pos_ += n;
    }
  }

  uint64_t parse_uint(const char* what) {
    if (pos_ >= text_.size()) error(std::string("unexpected end, expected ") + what);
    const char c = text_[pos_];
    if (c == '-') error(std::string(what) + " must not be negative");
    if (c < '0' || c > '9')
      error(std::string("expected ") + what + " (an integer), found " + describe_here());
    uint64_t v = 0;
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      if (mul_overflows(v, 10, &v) || add_overflows(v, uint64_t(text_[pos_] - '0'), &v))
        error(std::string(what) + " does not fit in 64 bits");
      ++pos_;
    }
    if (text_[start] == '0' && pos_ - start > 1) {
      pos_ = start;
      error(std::string(what) + " has a leading zero");
    }
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E'))
      error(std::string(what) + " must be an integer");
    return v;
  }

  std::vector<uint64_t> parse_uint_array(const char* what, size_t max_len) {
    expect('[', (std::string(what) + " array").c_str());
    std::vector<uint64_t> out;
    skip_ws();
    if (consume(']')) return out;
    for (;;) {
      skip_ws();
      if (out.size() == max_len)
        error(std::string(what) + " has more than " + std::to_string(max_len) + " entries");
      out.push_back(parse_uint(what));
      skip_ws();
      if (consume(']')) return out;
      expect(',', "',' or ']'");
    }
  }

  void parse_metadata(std::vector<std::pair<std::string, std::string>>* out) {
    expect('{', "__metadata__ to be an object");
    std::unordered_set<std::string> keys;
    skip_ws();
    if (consume('}')) return;
    for (;;) {
      skip_ws();
      const size_t key_pos = pos_;
      std::string key = parse_string("a metadata key");
      if (!keys.insert(key).second) {
        pos_ = key_pos;
        error("duplicate metadata key " + quoted(key));
      }
      skip_ws();
      expect(':', "':' after a key");
      skip_ws();
      std::string value = parse_string(("metadata " + quoted(key)).c_str());
      out->emplace_back(std::move(key), std::move(value));
      skip_ws();
      if (consume('}')) return;
      expect(',', "',' or '}' in __metadata__");
    }
  }

  HeaderEntry parse_entry(std::string name) {
    HeaderEntry e;
    e.name = std::move(name);
    const std::string label = "tensor " + quoted(e.name);
    if (pos_ >= text_.size() || text_[pos_] != '{') {
      if (pos_ >= text_.size()) error("unexpected end, expected the entry of " + label);
      error("entry of " + label + " must be an object, found " + describe_here());
    }
    ++pos_;
    bool seen_dtype = false, seen_shape = false, seen_offsets = false;
    skip_ws();
    if (!consume('}')) {
      for (;;) {
        skip_ws();
        const size_t key_pos = pos_;
        const std::string key = parse_string("a field name");
        skip_ws();
        expect(':', "':' after a key");
        skip_ws();
        bool* seen = key == "dtype"          ? &seen_dtype
                     : key == "shape"        ? &seen_shape
                     : key == "data_offsets" ? &seen_offsets
                                             : nullptr;
        if (seen == nullptr) {
          pos_ = key_pos;
          error(label + " has an unknown field " + quoted(key));
        }
        if (*seen) {
          pos_ = key_pos;
          error(label + " has a duplicate field " + quoted(key));
        }
        *seen = true;
        if (key == "dtype") {
          e.dtype = parse_string((label + " dtype").c_str());
        } else if (key == "shape") {
          e.shape = parse_uint_array((label + " shape").c_str(), max_rank_);
        } else {
          const auto offsets = parse_uint_array((label + " data_offsets").c_str(), 2);
          if (offsets.size() != 2) error(label + " data_offsets must have 2 entries");
          e.begin = offsets[0];
          e.end = offsets[1];
        }
        skip_ws();
        if (consume('}')) break;
        expect(',', "',' or '}' in a tensor entry");
      }
    }
    if (!seen_dtype) error(label + " has no dtype");
    if (!seen_shape) error(label + " has no shape");
    if (!seen_offsets) error(label + " has no data_offsets");
    return e;
  }

  std::string_view text_;
  size_t max_rank_;
  size_t pos_ = 0;
};

}  // namespace

SafetensorsHeader parse_safetensors_header(std::string_view json, size_t max_rank) {
  return HeaderParser(json, max_rank).parse();
}

}  // namespace tern
