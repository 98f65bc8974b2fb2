// libFuzzer target for `tern serve`'s request layer (engine/server/protocol.cpp): the JSON bodies
// of /embed, /embed_all, /tokenize and /v1/embeddings, image inputs (data: URLs, base64) and
// the error bodies built from what a client sent. Built by scripts/fuzz.sh
// (bash scripts/fuzz.sh 60 server_request_fuzz); seeds: make_server_request_seeds.py.
//
// The first byte picks the route (or the image-input decoder) and a client batch limit; the
// rest is the body. Every input must parse into a request within the limits or throw ApiError
// with status 400 or 422; every error body must be valid JSON; base64 must round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "engine/server/protocol.hpp"

using namespace tern::server;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_error(const ApiError& e) {
  check(e.status == 400 || e.status == 422);
  for (const std::string& body :
       {tei_error_body(e.kind, e.what()), openai_error_body(e.kind, e.what())}) {
    const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    check(!j.is_discarded() && j.is_object() && j.contains("error"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((mode & 7) >= 4) {  // image inputs and base64
    try {
      const std::string bytes = decode_image_input(body, "inputs[0]");
      check(bytes.size() <= body.size());
      check(base64_decode(base64_encode(bytes.data(), bytes.size()), "x") == bytes);
    } catch (const ApiError& e) {
      check(e.status == 422);
      check_error(e);
    }
    return 0;
  }
  const Route routes[4] = {Route::embed, Route::embed_all, Route::openai_embeddings,
                           Route::tokenize};
  const Route route = routes[mode & 3];
  ParseLimits limits;
  limits.max_inputs = 1 + (mode >> 3);
  try {
    const EmbedRequest r = parse_request(body, route, limits);
    check(!r.inputs.empty());
    check(r.single ? r.inputs.size() == 1 : r.inputs.size() <= limits.max_inputs);
    for (const RawInput& in : r.inputs) {
      check(route == Route::openai_embeddings || !in.is_ids);
      check(!in.is_ids || !in.ids.empty());
      for (int32_t id : in.ids) check(id >= 0);
    }
    check(!r.dimensions || *r.dimensions >= 1);
    // The texts as the server echoes them (/tokenize) must make valid JSON.
    std::string texts = "[";
    for (size_t i = 0; i < r.inputs.size(); ++i) {
      if (i) texts += ",";
      append_json_string(texts, r.inputs[i].text);
    }
    texts += "]";
    check(!nlohmann::json::parse(texts, nullptr, false).is_discarded());
  } catch (const ApiError& e) {
    check_error(e);
  }
  return 0;
}
