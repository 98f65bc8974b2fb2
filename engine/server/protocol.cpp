// Request parsing and response formatting for the server's routes (see protocol.hpp).
#include "engine/server/protocol.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace tern::server {
namespace {

using json = nlohmann::json;

// Deeper nesting than any valid request has is refused before the DOM is built: a 2 MB body of
// '[' would otherwise become a million nested arrays.
constexpr int kMaxJsonDepth = 8;

// A client's value quoted in an error message, cut to 64 bytes (on a UTF-8 boundary).
std::string quote(std::string_view s) {
  if (s.size() <= 64) return "\"" + std::string(s) + "\"";
  size_t n = 64;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return "\"" + std::string(s.substr(0, n)) + "...\"";
}

[[noreturn]] void invalid(const std::string& message) {
  throw ApiError(422, ErrorKind::validation, message);
}

void check_depth(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw ApiError(
            400, ErrorKind::validation,
            "malformed JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

json parse_json(std::string_view body) {
  if (body.empty()) throw ApiError(400, ErrorKind::validation, "malformed JSON: the body is empty");
  check_depth(body);
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    // e.what() quotes the bytes last read, which may be invalid UTF-8: say where, not what.
    const bool utf8 = std::strstr(e.what(), "UTF-8") != nullptr;
    const bool truncated = e.byte >= body.size();
    std::string why = utf8        ? "invalid UTF-8"
                      : truncated ? "unexpected end of input"
                                  : "syntax error";
    throw ApiError(400, ErrorKind::validation,
                   "malformed JSON: " + why + " at byte " + std::to_string(e.byte));
  } catch (const json::exception&) {  // out_of_range: a number like 1e999
    throw ApiError(400, ErrorKind::validation, "malformed JSON: a number out of range");
  }
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a value";
  }
}

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const json& v) {
  invalid("`" + field + "` must be " + expected + ", got " + type_name(v));
}

std::optional<bool> get_bool(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) wrong_type(field, "a boolean", *it);
  return it->get<bool>();
}

std::optional<int64_t> get_positive_int(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) wrong_type(field, "a positive integer", *it);
  const bool ok = it->is_number_unsigned()
                      ? it->get<uint64_t>() >= 1 && it->get<uint64_t>() <= (1u << 30)
                      : it->get<int64_t>() >= 1 && it->get<int64_t>() <= (1 << 30);
  if (!ok) invalid("`" + std::string(field) + "` must be a positive integer, got " + it->dump());
  return it->get<int64_t>();
}

std::optional<std::string> get_string(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) wrong_type(field, "a string", *it);
  return it->get<std::string>();
}

int32_t token_id(const json& v, const std::string& where) {
  if (!v.is_number_integer()) wrong_type(where, "a token id (integer)", v);
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  const bool ok = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(kMax)
                                         : v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMax;
  if (!ok) invalid("`" + where + "` is not a valid token id: " + v.dump());
  return static_cast<int32_t>(v.get<int64_t>());
}

void check_count(size_t n, const char* field, const ParseLimits& limits) {
  if (n == 0) invalid("`" + std::string(field) + "` cannot be empty");
  if (n > limits.max_inputs)
    invalid("`" + std::string(field) + "` has " + std::to_string(n) +
            " inputs, more than the maximum of " + std::to_string(limits.max_inputs) +
            " (--max-client-batch-size)");
}

// str | [str]
std::vector<RawInput> string_inputs(const json& v, const char* field, const ParseLimits& limits) {
  std::vector<RawInput> out;
  if (v.is_string()) {
    out.push_back({false, v.get<std::string>(), {}});
    return out;
  }
  if (!v.is_array()) wrong_type(field, "a string or an array of strings", v);
  check_count(v.size(), field, limits);
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string())
      wrong_type(std::string(field) + "[" + std::to_string(i) + "]", "a string", v[i]);
    out.push_back({false, v[i].get<std::string>(), {}});
  }
  return out;
}

// OpenAI: str | [str] | [int] | [[int]]
std::vector<RawInput> openai_inputs(const json& v, const ParseLimits& limits) {
  if (v.is_string() || (v.is_array() && !v.empty() && v[0].is_string()))
    return string_inputs(v, "input", limits);
  if (!v.is_array())
    wrong_type("input", "a string, an array of strings or an array of token ids", v);
  if (v.empty()) invalid("`input` cannot be empty");
  std::vector<RawInput> out;
  if (v[0].is_number()) {  // one list of token ids
    RawInput in{true, {}, {}};
    in.ids.reserve(v.size());
    for (size_t j = 0; j < v.size(); ++j)
      in.ids.push_back(token_id(v[j], "input[" + std::to_string(j) + "]"));
    out.push_back(std::move(in));
    return out;
  }
  check_count(v.size(), "input", limits);
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = "input[" + std::to_string(i) + "]";
    if (!v[i].is_array()) wrong_type(where, "an array of token ids (as input[0] is)", v[i]);
    if (v[i].empty()) invalid("`" + where + "` cannot be empty");
    RawInput in{true, {}, {}};
    in.ids.reserve(v[i].size());
    for (size_t j = 0; j < v[i].size(); ++j)
      in.ids.push_back(token_id(v[i][j], where + "[" + std::to_string(j) + "]"));
    out.push_back(std::move(in));
  }
  return out;
}

void check_truncation_direction(const json& obj) {
  auto dir = get_string(obj, "truncation_direction");
  if (dir && *dir != "right" && *dir != "Right")
    invalid("`truncation_direction` " + quote(*dir) + " is not supported (only \"right\")");
}

void refuse_prompt_name(const json& obj) {
  if (auto p = get_string(obj, "prompt_name"))
    invalid("`prompt_name` " + quote(*p) + ": this model has no prompts");
}

}  // namespace

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::validation:
      return "validation";
    case ErrorKind::tokenizer:
      return "tokenizer";
    case ErrorKind::overloaded:
      return "overloaded";
    case ErrorKind::unauthorized:
      return "unauthorized";
    case ErrorKind::payload:
      return "payload";
    case ErrorKind::backend:
      return "backend";
    case ErrorKind::not_found:
      return "not_found";
  }
  return "backend";
}

std::string tei_error_body(ErrorKind kind, std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  out += ",\"error_type\":\"";
  out += error_kind_name(kind);
  out += "\"}";
  return out;
}

std::string openai_error_body(ErrorKind kind, std::string_view message) {
  const char* type = kind == ErrorKind::backend        ? "server_error"
                     : kind == ErrorKind::overloaded   ? "rate_limit_error"
                     : kind == ErrorKind::unauthorized ? "authentication_error"
                                                       : "invalid_request_error";
  const char* code = kind == ErrorKind::unauthorized ? "invalid_api_key" : error_kind_name(kind);
  std::string out = "{\"error\":{\"message\":";
  append_json_string(out, message);
  out += ",\"type\":\"";
  out += type;
  out += "\",\"code\":\"";
  out += code;
  out += "\"}}";
  return out;
}

EmbedRequest parse_request(std::string_view body, Route route, const ParseLimits& limits) {
  const json obj = parse_json(body);
  if (!obj.is_object()) wrong_type("the request body", "a JSON object", obj);
  EmbedRequest req;
  if (route == Route::openai_embeddings) {
    auto it = obj.find("input");
    if (it == obj.end() || it->is_null()) invalid("`input` is required");
    req.inputs = openai_inputs(*it, limits);
    req.single = it->is_string() || (!it->empty() && (*it)[0].is_number());
    get_string(obj, "model");  // any name: one model is served
    get_string(obj, "user");
    if (auto f = get_string(obj, "encoding_format")) {
      if (*f == "base64")
        req.base64 = true;
      else if (*f != "float")
        invalid("`encoding_format` must be \"float\" or \"base64\", got " + quote(*f));
    }
    req.dimensions = get_positive_int(obj, "dimensions");
    return req;
  }
  auto it = obj.find("inputs");
  if (it == obj.end() || it->is_null()) invalid("`inputs` is required");
  req.inputs = string_inputs(*it, "inputs", limits);
  req.single = it->is_string();
  check_count(req.inputs.size(), "inputs", limits);
  if (route == Route::tokenize) {
    if (auto a = get_bool(obj, "add_special_tokens")) req.add_special_tokens = *a;
    refuse_prompt_name(obj);
    return req;
  }
  req.normalize = get_bool(obj, "normalize");
  req.truncate = get_bool(obj, "truncate");
  check_truncation_direction(obj);
  refuse_prompt_name(obj);
  if (route == Route::embed) req.dimensions = get_positive_int(obj, "dimensions");
  return req;
}

std::string base64_decode(std::string_view text, const std::string& what) {
  static const auto table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int8_t>(i);
    return t;
  }();
  size_t n = text.size();
  size_t pad = 0;
  while (n > 0 && pad < 2 && text[n - 1] == '=') --n, ++pad;
  if (n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0))
    throw ApiError(422, ErrorKind::validation, what + ": invalid base64 (bad length or padding)");
  std::string out;
  out.reserve(n / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int8_t v = table[static_cast<uint8_t>(text[i])];
    if (v < 0)
      throw ApiError(422, ErrorKind::validation,
                     what + ": invalid base64 character at offset " + std::to_string(i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string base64_encode(const void* data, size_t size) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (size - i == 1) {
    const uint32_t v = uint32_t(p[i]) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63], '=', '='};
  } else if (size - i == 2) {
    const uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
  }
  return out;
}

std::string decode_image_input(std::string_view input, const std::string& what) {
  if (input.empty()) invalid(what + ": empty image");
  if (input.substr(0, 5) == "data:") {
    const size_t comma = input.find(',');
    if (comma == std::string_view::npos) invalid(what + ": a data: URL without ','");
    const std::string_view meta = input.substr(5, comma - 5);
    if (meta.size() < 7 || meta.substr(meta.size() - 7) != ";base64")
      invalid(what + ": data: URLs must be base64 (\"data:image/png;base64,...\")");
    const std::string_view mime = meta.substr(0, meta.size() - 7);
    if (!mime.empty() && mime.substr(0, 6) != "image/")
      invalid(what + ": a data: URL of type " + quote(mime) + ", expected image/*");
    return base64_decode(input.substr(comma + 1), what);
  }
  const size_t colon = input.find(':');
  if (input[0] == '/' || input[0] == '.' ||
      (colon != std::string_view::npos && colon < 10 && input.substr(colon, 3) == "://"))
    invalid(what +
            ": the server does not fetch URLs or open files; send the image as base64 "
            "or a data: URL");
  return base64_decode(input, what);
}

void append_json_floats(std::string& out, const float* v, size_t n) {
  out.push_back('[');
  char buf[32];
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(',');
    auto r = std::to_chars(buf, buf + sizeof buf, v[i]);
    out.append(buf, r.ptr);
  }
  out.push_back(']');
}

// Length of the valid UTF-8 sequence at s[i], or 0 (overlong forms, surrogates and code
// points past U+10FFFF are invalid).
static size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  uint32_t cp = n == 1 ? c : c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size();) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u >= 0x80) {
      const size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";  // invalid UTF-8: the replacement character
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    if (u == '"' || u == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(u));
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out.push_back(static_cast<char>(u));
    }
    ++i;
  }
  out.push_back('"');
}

}  // namespace tern::server
