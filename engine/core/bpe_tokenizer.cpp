// CLIP byte-level BPE (OpenAI simple_tokenizer.py). Each step below names the Python it follows.
#include "engine/core/bpe_tokenizer.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <queue>

#include "engine/core/error.hpp"
#include "engine/core/unicode_text.hpp"

namespace tern {

namespace {

struct HtmlEntity {
  const char* name;
  const char* value;
};
struct HtmlCharref {
  uint32_t code, replacement;
};
#include "engine/core/html_entities.inc"

// ---- step 1: html.unescape ---------------------------------------------------------------------

const char* find_entity(std::string_view name) {
  const auto* end = std::end(kHtmlEntities);
  const auto* it = std::lower_bound(
      std::begin(kHtmlEntities), end, name,
      [](const HtmlEntity& e, std::string_view n) { return std::string_view(e.name) < n; });
  return it != end && std::string_view(it->name) == name ? it->value : nullptr;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) {
  return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

// Python's html._replace_charref for a numeric reference with value `num` (saturated).
void append_charref(std::string* out, uint64_t num) {
  for (const HtmlCharref& r : kHtmlInvalidCharrefs)
    if (r.code == num) return unicode::append_utf8(out, r.replacement);
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return unicode::append_utf8(out, 0xFFFD);
  if (std::binary_search(std::begin(kHtmlInvalidCodepoints), std::end(kHtmlInvalidCodepoints),
                         static_cast<uint32_t>(num)))
    return;
  unicode::append_utf8(out, static_cast<char32_t>(num));
}

// html.unescape: the references matched by
//   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
// replaced as _replace_charref does (a name, or its longest known prefix of >= 2 characters).
std::string html_unescape(std::string_view s) {
  if (s.find('&') == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out.push_back(s[i++]);
      continue;
    }
    const size_t start = i + 1;
    if (start < s.size() && s[start] == '#') {
      size_t j = start + 1;
      uint64_t num = 0;
      bool ok = false;
      if (j < s.size() && is_digit(s[j])) {
        for (; j < s.size() && is_digit(s[j]); ++j)
          num = std::min<uint64_t>(num * 10 + (s[j] - '0'), 1u << 30);
        ok = true;
      } else if (j + 1 < s.size() && (s[j] == 'x' || s[j] == 'X') && is_hex(s[j + 1])) {
        for (++j; j < s.size() && is_hex(s[j]); ++j)
          num = std::min<uint64_t>(num * 16 + hex_value(s[j]), 1u << 30);
        ok = true;
      }
      if (!ok) {  // "&#" without digits: no reference
        out.push_back(s[i++]);
        continue;
      }
      if (j < s.size() && s[j] == ';') ++j;
      append_charref(&out, num);
      i = j;
      continue;
    }
    // A name: 1..32 characters (code points) outside "\t\n\f <&#;", then an optional ';'.
    size_t j = start;
    int chars = 0;
    while (j < s.size() && chars < 32) {
      const char c = s[j];
      if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
          c == ';')
        break;
      size_t k = j + 1;  // the input is valid UTF-8 (checked before): skip continuation bytes
      while (k < s.size() && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) ++k;
      j = k;
      ++chars;
    }
    if (chars == 0) {
      out.push_back(s[i++]);
      continue;
    }
    if (j < s.size() && s[j] == ';') ++j;
    const std::string_view name = s.substr(start, j - start);
    if (const char* v = find_entity(name)) {
      out += v;
      i = j;
      continue;
    }
    // The longest prefix name[:x], len(name) - 1 >= x >= 2 (in code points; entity names are
    // ASCII, so a prefix that cuts a multi-byte character cannot match anyway).
    bool replaced = false;
    for (size_t x = name.size() - 1; x >= 2 && x < name.size(); --x) {
      if (const char* v = find_entity(name.substr(0, x))) {
        out += v;
        out.append(name.substr(x));
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      out.push_back('&');
      out.append(name);
    }
    i = j;
  }
  return out;
}

// ---- step 2: whitespace and case ---------------------------------------------------------------

std::u32string decode(std::string_view s) {
  std::u32string cps;
  cps.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) cps.push_back(unicode::decode_utf8(s, &pos));
  return cps;
}

// Python's str.isspace (what str.strip removes): regex's \s plus U+001C..U+001F.
bool py_isspace(char32_t c) {
  return unicode::is_whitespace(c) || (c >= 0x1C && c <= 0x1F);
}

utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}

bool is_letter(char32_t c) {  // \p{L}
  switch (category(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}

bool is_number(char32_t c) {  // \p{N}
  switch (category(c)) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

// Unicode's Cased and Case_Ignorable (for the final sigma rule of str.lower), from the general
// categories: Cased = Lu | Ll | Lt; Case_Ignorable = Mn | Me | Cf | Lm | Sk and the word-break
// MidLetter / MidNumLet / Single_Quote characters. (Other_Lowercase letters such as U+00AA are not
// counted as cased: a difference from Python in a rare context.)
bool is_cased(char32_t c) {
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}
bool is_case_ignorable(char32_t c) {
  switch (c) {
    case 0x27:
    case 0x2E:
    case 0x3A:
    case 0xB7:
    case 0x387:
    case 0x55F:
    case 0x5F4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xFE13:
    case 0xFE52:
    case 0xFE55:
    case 0xFF07:
    case 0xFF0E:
    case 0xFF1A:
      return true;
    default:
      break;
  }
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
         k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

// Python's str.lower: full lowercase mapping, with U+03A3 -> U+03C2 in the Final_Sigma context.
void append_lower(std::string* out, const std::u32string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && is_case_ignorable(s[j - 1])) --j;
      bool final_sigma = j > 0 && is_cased(s[j - 1]);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < s.size() && is_case_ignorable(s[k])) ++k;
        final_sigma = k == s.size() || !is_cased(s[k]);
      }
      unicode::append_utf8(out, final_sigma ? 0x3C2 : 0x3C3);
      continue;
    }
    char32_t low[2];
    const int n = unicode::to_lowercase(c, low);
    for (int k = 0; k < n; ++k) unicode::append_utf8(out, low[k]);
  }
}

// ---- step 4: bytes_to_unicode ------------------------------------------------------------------

// GPT-2's table: printable Latin-1 bytes map to themselves, the other 68 to U+0100 onwards.
char32_t byte_to_unicode(int b) {
  const bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
  if (direct) return static_cast<char32_t>(b);
  int n = 0;
  for (int x = 0; x < b; ++x)
    if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE))) ++n;
  return static_cast<char32_t>(256 + n);
}

std::string byte_char(int b) {
  std::string s;
  unicode::append_utf8(&s, byte_to_unicode(b));
  return s;
}

std::vector<std::string_view> lines_of(const std::string& text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

const char* const kContractions[] = {"s", "t", "re", "ve", "m", "ll", "d"};

// The pattern is compiled with re.IGNORECASE, and the text is lowercase already, so the one
// character left that matches a letter of the literals is U+017F (long s), which folds to "s".
// Returns the bytes of s[pos...] that match `lit` case-insensitively, or 0.
size_t match_literal(std::string_view s, size_t pos, std::string_view lit) {
  size_t i = pos;
  for (char c : lit) {
    if (i < s.size() && s[i] == c) {
      ++i;
    } else if (c == 's' && s.compare(i, 2, "\xc5\xbf") == 0) {
      i += 2;
    } else {
      return 0;
    }
  }
  return i - pos;
}

}  // namespace

// ---- config ------------------------------------------------------------------------------------

BpeConfig BpeConfig::from_json(const std::string& json_text) {
  if (json_text.size() > 4096) fail("tokenizer config: ", json_text.size(), " bytes is too long");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer config: not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail("tokenizer config: expected a JSON object");
  if (!j.contains("type") || j["type"] != "bpe")
    fail("tokenizer config: \"type\" must be \"bpe\" for a BPE tokenizer");
  BpeConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "type") continue;
    if (key == "max_length") {
      if (!v.is_number_integer() || v.get<int64_t>() < 2 || v.get<int64_t>() > (1 << 20))
        fail("tokenizer config: \"max_length\" must be an integer in [2, 1048576]");
      c.max_length = v.get<int>();
    } else if (key == "bos_token" || key == "eos_token" || key == "pad_token") {
      if (!v.is_string()) fail("tokenizer config: \"", key, "\" must be a string");
      std::string s = v.get<std::string>();
      unicode::validate_utf8(s);
      if (s.find('\n') != std::string::npos)
        fail("tokenizer config: \"", key, "\" contains a line break");
      (key == "bos_token" ? c.bos_token : key == "eos_token" ? c.eos_token : c.pad_token) = s;
    } else {
      fail("tokenizer config: unknown key \"", key, "\"");
    }
  }
  if (c.bos_token.empty() || c.eos_token.empty())
    fail("tokenizer config: bos_token and eos_token must not be empty");
  return c;
}

std::string BpeConfig::to_json() const {
  nlohmann::ordered_json j;
  j["type"] = "bpe";
  j["max_length"] = max_length;
  j["bos_token"] = bos_token;
  j["eos_token"] = eos_token;
  j["pad_token"] = pad_token;
  return j.dump();
}

// ---- tokenizer ---------------------------------------------------------------------------------

BpeTokenizer::BpeTokenizer(const std::string& vocab_text, const std::string& merges_text,
                           const BpeConfig& config)
    : config_(config) {
  for (std::string_view line : lines_of(vocab_text)) {
    const size_t line_no = vocab_.size() + 1;
    try {
      unicode::validate_utf8(line);
    } catch (const Error& e) {
      fail("vocab line ", line_no, ": ", e.what());
    }
    if (vocab_.size() >= static_cast<size_t>(INT32_MAX)) fail("vocab: more than 2^31-1 tokens");
    const auto [it, inserted] =
        ids_.emplace(std::string(line), static_cast<int32_t>(vocab_.size()));
    if (!inserted)
      fail("vocab line ", line_no, ": token \"", line, "\" repeats line ", it->second + 1);
    vocab_.emplace_back(line);
  }
  auto id_of = [&](const std::string& token, const char* what) {
    const auto it = ids_.find(token);
    if (it == ids_.end())
      fail("vocab (", vocab_.size(), " tokens) lacks ", what, " \"", token, "\"");
    return it->second;
  };
  bos_id_ = id_of(config_.bos_token, "the start token");
  eos_id_ = id_of(config_.eos_token, "the end token");
  pad_id_ = config_.pad_token.empty() ? 0 : id_of(config_.pad_token, "the padding token");
  for (int b = 0; b < 256; ++b) {
    byte_id_[b] = id_of(byte_char(b), "the byte token");
    byte_end_id_[b] = id_of(byte_char(b) + "</w>", "the byte token");
  }
  int32_t rank = 0;
  size_t line_no = 0;
  for (std::string_view line : lines_of(merges_text)) {
    ++line_no;
    if (line.empty() || (line_no == 1 && line.substr(0, 8) == "#version")) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string_view::npos)
      fail("merges line ", line_no, ": expected two tokens separated by one space");
    const std::string a(line.substr(0, sp)), b(line.substr(sp + 1));
    const auto ia = ids_.find(a), ib = ids_.find(b), iab = ids_.find(a + b);
    if (ia == ids_.end() || ib == ids_.end() || iab == ids_.end())
      fail("merges line ", line_no, ": \"", line, "\" names a token the vocab lacks");
    // As dict(zip(merges, range(len(merges)))): a repeated merge keeps its last rank.
    merges_[(uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second)] = {rank++, iab->second};
  }
}

std::string BpeTokenizer::normalize(std::string_view text) {
  unicode::validate_utf8(text);
  // basic_clean: (ftfy.fix_text is not applied), html.unescape twice, strip
  const std::string once = html_unescape(text);
  const std::u32string cps = decode(html_unescape(once));
  // strip, then whitespace_clean: re.sub(r'\s+', ' ', ...) and strip; every \s is a py_isspace
  size_t b = 0, e = cps.size();
  while (b < e && py_isspace(cps[b])) ++b;
  while (e > b && py_isspace(cps[e - 1])) --e;
  std::u32string clean;
  clean.reserve(e - b);
  for (size_t i = b; i < e; ++i) {
    if (unicode::is_whitespace(cps[i])) {
      if (clean.empty() || clean.back() != U' ') clean.push_back(U' ');
    } else {
      clean.push_back(cps[i]);
    }
  }
  // The second strip: a collapsed run at either end (or a U+001C..U+001F there) goes.
  size_t cb = 0, ce = clean.size();
  while (cb < ce && py_isspace(clean[cb])) ++cb;
  while (ce > cb && py_isspace(clean[ce - 1])) --ce;
  // .lower()
  std::string out;
  append_lower(&out, clean.substr(cb, ce - cb));
  return out;
}

void BpeTokenizer::bpe_piece(std::string_view piece, std::vector<int32_t>* out) const {
  const size_t n = piece.size();
  // word = tuple(token[:-1]) + (token[-1] + '</w>',), over the byte characters
  std::vector<int32_t> id(n);
  std::vector<int> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned char>(piece[i]);
    id[i] = i + 1 == n ? byte_end_id_[b] : byte_id_[b];
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 == n ? -1 : static_cast<int>(i) + 1;
  }
  // The lowest-ranked pair first; among equal ranks (the same pair) the leftmost, which is the
  // order of OpenAI's loop (min over pairs, then every occurrence left to right).
  struct Cand {
    int32_t rank;
    int pos;
    int32_t left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    const auto it = merges_.find((uint64_t(uint32_t(id[pos])) << 32) | uint32_t(id[next[pos]]));
    if (it != merges_.end()) heap.push({it->second.rank, pos, id[pos], id[next[pos]]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
  std::vector<bool> dead(n, false);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    if (dead[c.pos] || next[c.pos] < 0 || id[c.pos] != c.left || id[next[c.pos]] != c.right)
      continue;  // stale: one of its symbols was merged since
    const int r = next[c.pos];
    id[c.pos] = merges_.at((uint64_t(uint32_t(c.left)) << 32) | uint32_t(c.right)).result;
    dead[r] = true;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int i = 0; i >= 0; i = next[i]) out->push_back(id[i]);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool truncate) const {
  const std::string norm = normalize(text);
  const size_t limit = static_cast<size_t>(config_.max_length) - 2;  // ids between start and end
  std::vector<int32_t> ids{bos_id_};
  size_t count = 0;  // ids produced, also past the limit (for the message)
  auto add = [&](int32_t v) {
    if (count++ < limit) ids.push_back(v);
  };
  std::vector<int32_t> piece_ids;
  const std::string_view s = norm;
  size_t pos = 0;
  while (pos < s.size()) {
    if (count > limit && truncate) break;
    size_t end = pos;
    // <\|startoftext\|>|<\|endoftext\|>: the special tokens, written in the text. Exactly
    // written, they map to their ids (the tokenizer's cache); "<|ſtartoftext|>" matches the
    // pattern too but goes through BPE as OpenAI's code does.
    if (s[pos] == '<') {
      bool special = false;
      for (const std::string* tok : {&config_.bos_token, &config_.eos_token}) {
        const size_t len = match_literal(s, pos, *tok);
        if (len == tok->size()) {
          add(tok == &config_.bos_token ? bos_id_ : eos_id_);
          pos += len;
          special = true;
          break;
        }
        if (len > 0) {
          end = pos + len;
          break;
        }
      }
      if (special) continue;
    }
    // 's|'t|'re|'ve|'m|'ll|'d
    if (end == pos && s[pos] == '\'') {
      for (const char* c : kContractions) {
        if (const size_t len = match_literal(s, pos + 1, c)) {
          end = pos + 1 + len;
          break;
        }
      }
    }
    if (end == pos) {
      size_t p = pos;
      const char32_t c = unicode::decode_utf8(s, &p);
      if (unicode::is_whitespace(c)) {  // between matches
        pos = p;
        continue;
      }
      end = p;
      if (is_letter(c)) {  // [\p{L}]+
        for (size_t q = end; q < s.size(); end = q) {
          if (!is_letter(unicode::decode_utf8(s, &q))) break;
        }
      } else if (!is_number(c)) {  // [^\s\p{L}\p{N}]+   ([\p{N}] is one character)
        for (size_t q = end; q < s.size(); end = q) {
          const char32_t d = unicode::decode_utf8(s, &q);
          if (unicode::is_whitespace(d) || is_letter(d) || is_number(d)) break;
        }
      }
    }
    piece_ids.clear();
    bpe_piece(s.substr(pos, end - pos), &piece_ids);
    for (int32_t v : piece_ids) add(v);
    pos = end;
  }
  if (count > limit && !truncate)
    fail("text is ", count + 2, " tokens long with ", config_.bos_token, " and ", config_.eos_token,
         ", over the context length ", config_.max_length, " (truncate to keep the first ", limit,
         ")");
  ids.push_back(eos_id_);
  return ids;
}

}  // namespace tern
