#pragma once
// The server's wire formats, free of HTTP and of the model: request bodies (TEI's /embed,
// /embed_all, /tokenize; OpenAI's /v1/embeddings) parsed into plain structs with every field
// checked, error bodies in TEI's and OpenAI's shapes, base64, and float arrays as JSON.
// A bad body throws ApiError naming the field; nothing here allocates more than a bounded
// multiple of the body's size. tests/fuzz/server_request_fuzz.cpp drives these functions.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tern::server {

// Error kinds, as TEI names them (`error_type`).
enum class ErrorKind {
  validation,
  tokenizer,
  overloaded,
  unauthorized,
  payload,
  backend,
  not_found
};
const char* error_kind_name(ErrorKind k);

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, ErrorKind kind, const std::string& message)
      : std::runtime_error(message), status(status), kind(kind) {}
  int status;
  ErrorKind kind;
};

// {"error": msg, "error_type": kind} (TEI) or {"error": {"message", "type", "code"}} (OpenAI).
std::string tei_error_body(ErrorKind kind, std::string_view message);
std::string openai_error_body(ErrorKind kind, std::string_view message);

enum class Route { embed, embed_all, openai_embeddings, tokenize };

// One input as the client sent it: a string (text, or an image as base64 / data: URL) or,
// on /v1/embeddings, a list of token ids.
struct RawInput {
  bool is_ids = false;
  std::string text;
  std::vector<int32_t> ids;
};

struct EmbedRequest {
  std::vector<RawInput> inputs;       // in the client's order, never empty
  bool single = false;                // sent as one value, not a list: errors name the field
  std::optional<bool> normalize;      // absent: the route's default
  std::optional<bool> truncate;       // absent: the server's --auto-truncate
  bool base64 = false;                // OpenAI encoding_format "base64"
  std::optional<int64_t> dimensions;  // OpenAI / TEI: keep the first N values, renormalised
  bool add_special_tokens = true;     // /tokenize
};

struct ParseLimits {
  size_t max_inputs = 32;  // --max-client-batch-size
};

// Parses and checks the JSON body of `route`. Unknown fields are ignored (clients send extras
// such as OpenAI's "user"). Throws ApiError: 400 for malformed JSON (invalid UTF-8 included),
// 422 for a wrong type, a bad value, no inputs or more than limits.max_inputs.
EmbedRequest parse_request(std::string_view body, Route route, const ParseLimits& limits);

// Base64 (RFC 4648, standard alphabet; '=' padding optional; no whitespace). Throws ApiError
// 422 naming `what` and the offending offset.
std::string base64_decode(std::string_view text, const std::string& what);
std::string base64_encode(const void* data, size_t size);

// An image input: a data: URL ("data:image/png;base64,...") or bare base64 -> encoded bytes.
// URLs and paths are refused (the server never fetches or opens what a request names).
std::string decode_image_input(std::string_view input, const std::string& what);

// Appends floats as a JSON array; each value in the shortest form that reads back as the same
// float32. Non-finite values never reach here (the library refuses them).
void append_json_floats(std::string& out, const float* v, size_t n);
// A JSON string; invalid UTF-8 (never in a parsed request, but possible in messages built from
// raw bytes) becomes U+FFFD, so the output is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

}  // namespace tern::server
