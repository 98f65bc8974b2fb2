#pragma once
// The HTTP side of `tern serve`: cpp-httplib (Debian's libcpp-httplib) parses HTTP; this layer
// adds the limits a server facing other programs needs and routes requests to the batcher.
#include <cstdint>
#include <string>

#include "tern/tern.hpp"

namespace tern::server {

class Backend;
class Batcher;
struct Metrics;

struct HttpConfig {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  std::string model_name;
  Pooling pooling = Pooling::mean;  // of /embed and /v1/embeddings
  int64_t max_batch_tokens = 16384;
  size_t max_client_batch_size = 32;      // inputs per request
  int64_t max_concurrent_requests = 512;  // admitted at once; more: 429
  size_t payload_limit = 2000000;         // request body bytes; more: 413
  bool auto_truncate = false;
  std::string api_key;              // "": no authentication
  int max_connections = 10000;      // open at once, idle ones included; more: 503
  double client_timeout_s = 30;     // to send a whole request, or to take a whole response
  double idle_timeout_s = 5;        // keep-alive: between requests
  size_t max_header_bytes = 16384;  // request line + headers; more: 431
};

// Binds, prints "listening on http://HOST:PORT" on stderr, serves until SIGINT or SIGTERM, then
// stops accepting, finishes the requests it has, and returns 0. Returns 1 if it cannot bind.
int run_http_server(const HttpConfig& config, const Backend& backend, Batcher& batcher,
                    Metrics& metrics);

}  // namespace tern::server
