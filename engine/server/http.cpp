// Routes of `tern serve`: authentication, admission (429), body limits (413), validation, then
// the batcher; errors in TEI's shape, or OpenAI's on /v1/*. See http.hpp and PRODUCT.md.
#include "engine/server/http.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "engine/server/backend.hpp"
#include "engine/server/batcher.hpp"
#include "engine/server/connection.hpp"
#include "engine/server/metrics.hpp"
#include "engine/server/protocol.hpp"
#include "tern/version.hpp"

namespace tern::server {
namespace {

using Clock = std::chrono::steady_clock;
enum RouteId { kEmbed, kEmbedAll, kOpenAI, kTokenize, kInfo, kHealth, kOther };

bool is_openai(const httplib::Request& req) {
  return req.path.rfind("/v1/", 0) == 0;
}

void set_error(const httplib::Request& req, httplib::Response& res, int status, ErrorKind kind,
               const std::string& message) {
  res.status = status;
  res.set_content(is_openai(req) ? openai_error_body(kind, message) : tei_error_body(kind, message),
                  "application/json");
}

// Equal keys compare in time that depends only on the length of what the client sent.
bool constant_time_equal(const std::string& secret, const std::string& given) {
  unsigned diff = secret.size() != given.size();
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^
            static_cast<unsigned char>(secret.empty() ? 0 : secret[i % secret.size()]);
  return diff == 0;
}

std::string route_path(Route r) {
  switch (r) {
    case Route::embed:
      return "/embed";
    case Route::embed_all:
      return "/embed_all";
    case Route::openai_embeddings:
      return "/v1/embeddings";
    case Route::tokenize:
      return "/tokenize";
  }
  return "";
}

// L2-normalised first `dims` values, accumulated in double as the library does.
std::vector<float> truncate_normalize(const Embedding& e, size_t dims, bool normalize) {
  std::vector<float> v(e.values.begin(), e.values.begin() + dims);
  if (!normalize) return v;
  double ss = 0;
  for (float x : v) ss += double(x) * x;
  const double norm = std::sqrt(ss);
  if (norm > 0)
    for (float& x : v) x = static_cast<float>(x / norm);
  return v;
}

class Routes {
 public:
  Routes(const HttpConfig& cfg, const Backend& backend, Batcher& batcher, Metrics& metrics)
      : cfg_(cfg), backend_(backend), batcher_(batcher), metrics_(metrics) {}

  void install(httplib::Server& svr) {
    for (Route r : {Route::embed, Route::embed_all, Route::openai_embeddings, Route::tokenize})
      svr.Post(route_path(r),
               [this, r](const httplib::Request& req, httplib::Response& res,
                         const httplib::ContentReader& reader) { post(r, req, res, reader); });
    svr.Get("/info", [this](const auto& req, auto& res) { simple(kInfo, req, res); });
    svr.Get("/health", [this](const auto& req, auto& res) { simple(kHealth, req, res); });
    svr.Get("/metrics", [this](const auto& req, auto& res) { simple(kOther, req, res); });
    // Unknown routes, without reading their bodies.
    svr.Post(".*", [this](const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader&) {
      not_found(req, res);
      res.set_header("Connection", "close");  // its body is not read
      if (ConnectionState* c = current_connection()) c->must_close = true;
    });
    svr.Get(".*", [this](const auto& req, auto& res) { not_found(req, res); });
    svr.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
      if (ConnectionState* c = current_connection()) c->phase = ConnectionState::Phase::body;
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // Every error httplib answers itself (bad request line, headers over the cap, a timeout,
    // 404 for other methods) gets a JSON body; ours already have one.
    svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
      ConnectionState* c = current_connection();
      if (c && c->phase != ConnectionState::Phase::writing) c->start_writing(cfg_.client_timeout_s);
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      // httplib's own errors (a bad request line, headers over the cap, a timeout): what follows
      // on the connection cannot be trusted to start a request.
      if (c) c->must_close = true;
      res.set_header("Connection", "close");
      ErrorKind kind = ErrorKind::validation;
      std::string message = "bad request";
      if (c && c->header_overflow) {
        res.status = 431;
        kind = ErrorKind::payload;
        message =
            "request line and headers over " + std::to_string(cfg_.max_header_bytes) + " bytes";
      } else if (c && c->timed_out) {
        res.status = 408;
        message =
            "the request was not received within " + std::to_string(cfg_.client_timeout_s) + " s";
      } else if (res.status == 404) {
        kind = ErrorKind::not_found;
        message = "no route " + req.method + " " + req.path;
      } else if (res.status == 413) {
        kind = ErrorKind::payload;
        message = "request body over the payload limit of " + std::to_string(cfg_.payload_limit) +
                  " bytes (--payload-limit)";
      } else if (res.status == 400) {
        message = "malformed HTTP request";
      } else {
        message = "HTTP error " + std::to_string(res.status);
      }
      metrics_.count_error(kind);
      set_error(req, res, res.status, kind, message);
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler(
        [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
          metrics_.count_error(ErrorKind::backend);
          set_error(req, res, 500, ErrorKind::backend, "internal error");
        });
  }

 private:
  void check_auth(const httplib::Request& req) const {
    if (cfg_.api_key.empty()) return;
    const std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    const std::string given = h.rfind(prefix, 0) == 0 ? h.substr(prefix.size()) : std::string();
    if (given.empty() || !constant_time_equal(cfg_.api_key, given))
      throw ApiError(401, ErrorKind::unauthorized,
                     h.empty() ? "missing API key (Authorization: Bearer KEY)" : "wrong API key");
  }

  struct Admission {
    Metrics& m;
    ~Admission() { m.in_flight.fetch_sub(1); }
  };

  // Reads the body, at most --payload-limit bytes. *consumed tells whether the connection is
  // still at a request boundary afterwards.
  std::string read_body(const httplib::Request& req, const httplib::ContentReader& reader,
                        bool* consumed) const {
    const std::string declared = req.get_header_value("Content-Length");
    if (!declared.empty()) {
      char* end = nullptr;
      errno = 0;
      const unsigned long long n = std::strtoull(declared.c_str(), &end, 10);
      if (errno == 0 && *end == '\0' && n > cfg_.payload_limit) throw payload_error();
    }
    *consumed = true;
    std::string body;
    // Neither a length nor chunks: HTTP/1.1 says there is no body (httplib would read to EOF).
    std::string te = req.get_header_value("Transfer-Encoding");
    for (char& ch : te) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (declared.empty() && te.find("chunked") == std::string::npos) return body;
    bool over = false;
    const bool ok = reader([&](const char* data, size_t n) {
      if (body.size() + n > cfg_.payload_limit) {
        over = true;
        return false;
      }
      body.append(data, n);
      return true;
    });
    if (over || !ok) *consumed = false;
    if (over) throw payload_error();
    if (!ok) {
      ConnectionState* c = current_connection();
      throw ApiError(c && c->timed_out ? 408 : 400, ErrorKind::validation,
                     c && c->timed_out ? "the request body was not received in time"
                                       : "the request body could not be read");
    }
    return body;
  }

  ApiError payload_error() const {
    return ApiError(413, ErrorKind::payload,
                    "request body over the payload limit of " + std::to_string(cfg_.payload_limit) +
                        " bytes (--payload-limit)");
  }

  void post(Route route, const httplib::Request& req, httplib::Response& res,
            const httplib::ContentReader& reader) {
    const auto t0 = Clock::now();
    metrics_.requests[static_cast<int>(route)].fetch_add(1);
    bool read_attempted = false, consumed = false;
    try {
      check_auth(req);
      if (metrics_.in_flight.fetch_add(1) >= cfg_.max_concurrent_requests) {
        metrics_.in_flight.fetch_sub(1);
        throw ApiError(429, ErrorKind::overloaded,
                       "model is overloaded: " + std::to_string(cfg_.max_concurrent_requests) +
                           " requests in flight (--max-concurrent-requests)");
      }
      Admission admitted{metrics_};
      read_attempted = true;
      const std::string body = read_body(req, reader, &consumed);
      if (ConnectionState* c = current_connection()) c->phase = ConnectionState::Phase::handling;
      EmbedRequest r = parse_request(body, route, {cfg_.max_client_batch_size});
      std::string out = route == Route::tokenize ? tokenize(r) : embed(route, r);
      res.set_content(out, "application/json");
      metrics_.request_seconds.observe(std::chrono::duration<double>(Clock::now() - t0).count());
    } catch (const ApiError& e) {
      metrics_.count_error(e.kind);
      set_error(req, res, e.status, e.kind, e.what());
    } catch (const std::bad_alloc&) {
      metrics_.count_error(ErrorKind::backend);
      set_error(req, res, 503, ErrorKind::backend, "out of memory");
    } catch (const std::exception& e) {  // tern::Error from the library: a bug, not bad input
      metrics_.count_error(ErrorKind::backend);
      set_error(req, res, 500, ErrorKind::backend, e.what());
    }
    // Refused before the body was read (401, 429): skip it, so the connection can go on.
    if (!read_attempted) {
      try {
        read_body(req, reader, &consumed);
      } catch (const ApiError&) {
      }
    }
    if (!consumed) {
      res.set_header("Connection", "close");
      if (ConnectionState* c = current_connection()) c->must_close = true;
    }
    if (ConnectionState* c = current_connection()) c->start_writing(cfg_.client_timeout_s);
  }

  std::string embed(Route route, const EmbedRequest& r) {
    const bool text = backend_.text();
    const bool all = route == Route::embed_all;
    if (all && !backend_.per_token())
      throw ApiError(422, ErrorKind::validation,
                     backend_.model().architecture() +
                         " gives no per-token vectors: /embed_all does not apply");
    const bool truncate = r.truncate.value_or(cfg_.auto_truncate);
    const bool normalize = route == Route::openai_embeddings ? true : r.normalize.value_or(!all);
    const size_t dim = static_cast<size_t>(backend_.model().dim());
    size_t dims = dim;
    if (r.dimensions) {
      if (static_cast<size_t>(*r.dimensions) > dim)
        throw ApiError(422, ErrorKind::validation,
                       "`dimensions` " + std::to_string(*r.dimensions) +
                           " is more than the model's " + std::to_string(dim));
      dims = static_cast<size_t>(*r.dimensions);
    }
    BatchKey key;
    key.pooling = all ? Pooling::none : cfg_.pooling;
    key.normalize = dims == dim ? normalize : false;  // truncated vectors are normalised here
    if (text && !r.inputs.empty() && !r.inputs[0].is_ids) key.skip = backend_.text_skip();

    const char* field = route == Route::openai_embeddings ? "input" : "inputs";
    std::vector<Input> inputs;
    inputs.reserve(r.inputs.size());
    int64_t tokens = 0;
    for (size_t i = 0; i < r.inputs.size(); ++i) {
      const std::string what =
          r.single ? std::string(field) : std::string(field) + "[" + std::to_string(i) + "]";
      const RawInput& in = r.inputs[i];
      if (in.is_ids)
        inputs.push_back(backend_.ids_input(in.ids, truncate, what));
      else if (text)
        inputs.push_back(backend_.text_input(in.text, truncate, what));
      else
        inputs.push_back(backend_.image_input(in.text, what));
      tokens += inputs.back().tokens;
    }
    auto job = std::make_shared<Job>(key, std::move(inputs));
    batcher_.submit(job);
    job->wait();
    if (job->failed()) throw ApiError(500, ErrorKind::backend, job->error());
    std::vector<Embedding>& results = job->results();

    std::string out;
    out.reserve(results.size() * (all ? 64 : 1) * dim * 12 + 256);
    if (route == Route::openai_embeddings) {
      out += "{\"object\":\"list\",\"data\":[";
      for (size_t i = 0; i < results.size(); ++i) {
        const std::vector<float> v = truncate_normalize(results[i], dims, dims != dim);
        out += i ? ",{" : "{";
        out += "\"object\":\"embedding\",\"index\":" + std::to_string(i) + ",\"embedding\":";
        if (r.base64) {
          out += "\"" + base64_encode(v.data(), v.size() * sizeof(float)) + "\"";
        } else {
          append_json_floats(out, v.data(), v.size());
        }
        out += "}";
      }
      out += "],\"model\":";
      append_json_string(out, cfg_.model_name);
      out += ",\"usage\":{\"prompt_tokens\":" + std::to_string(tokens) +
             ",\"total_tokens\":" + std::to_string(tokens) + "}}";
      return out;
    }
    out += "[";
    for (size_t i = 0; i < results.size(); ++i) {
      if (i) out += ",";
      if (all) {
        const Embedding& e = results[i];
        const int64_t rows = e.shape.size() == 2 ? e.shape[0] : 1;
        out += "[";
        for (int64_t t = 0; t < rows; ++t) {
          if (t) out += ",";
          append_json_floats(out, e.values.data() + t * dim, dim);
        }
        out += "]";
      } else {
        const std::vector<float> v = truncate_normalize(results[i], dims, dims != dim && normalize);
        append_json_floats(out, v.data(), v.size());
      }
    }
    out += "]";
    return out;
  }

  // TEI's /tokenize: each token with its text and byte offsets in the input. Offsets come from
  // finding each piece in the input after the previous one (whitespace between pieces skipped,
  // ASCII case folded for lowercasing models); a piece not found there (accents stripped,
  // dropped characters) gets null offsets and its vocabulary text.
  std::string tokenize(const EmbedRequest& r) {
    if (!backend_.text())
      throw ApiError(422, ErrorKind::validation, "this is an image model: it has no tokenizer");
    const Model& m = backend_.model();
    const bool truncate = r.truncate.value_or(cfg_.auto_truncate);
    std::string out = "[";
    for (size_t i = 0; i < r.inputs.size(); ++i) {
      const std::string& text = r.inputs[i].text;
      const std::string what = r.single ? "inputs" : "inputs[" + std::to_string(i) + "]";
      const Input in = backend_.text_input(text, truncate, what);
      out += i ? ",[" : "[";
      size_t pos = 0;
      bool first = true;
      for (size_t k = 0; k < in.ids.size(); ++k) {
        const int32_t id = in.ids[k];
        const bool special = m.is_special_token(id);
        if (special && !r.add_special_tokens && (k == 0 || k + 1 == in.ids.size())) continue;
        std::string piece = m.token_text(id);
        if (piece.rfind("##", 0) == 0) piece.erase(0, 2);
        int64_t start = -1, stop = -1;
        if (!(special && (k == 0 || k + 1 == in.ids.size()))) {
          size_t p = pos;
          while (p < text.size() && std::strchr(" \t\r\n", text[p]) && text[p] != '\0') ++p;
          const bool unk = piece == "[UNK]";
          if (unk) {
            size_t e = p;
            while (e < text.size() && !std::strchr(" \t\r\n", text[e]) &&
                   !std::ispunct(static_cast<unsigned char>(text[e])))
              ++e;
            if (e > p) start = p, stop = e;
          } else if (p + piece.size() <= text.size()) {
            bool match = true;
            for (size_t j = 0; j < piece.size() && match; ++j)
              match = std::tolower(static_cast<unsigned char>(text[p + j])) ==
                      std::tolower(static_cast<unsigned char>(piece[j]));
            if (match) start = p, stop = p + piece.size();
          }
          if (start >= 0) pos = static_cast<size_t>(stop);
        }
        out += first ? "{" : ",{";
        first = false;
        out += "\"id\":" + std::to_string(id) + ",\"text\":";
        append_json_string(out, start >= 0 ? text.substr(start, stop - start) : m.token_text(id));
        out += std::string(",\"special\":") + (special ? "true" : "false");
        out += ",\"start\":" + (start >= 0 ? std::to_string(start) : "null");
        out += ",\"stop\":" + (stop >= 0 ? std::to_string(stop) : "null") + "}";
      }
      out += "]";
    }
    out += "]";
    return out;
  }

  void simple(RouteId id, const httplib::Request& req, httplib::Response& res) {
    if (id != kOther) metrics_.requests[id].fetch_add(1);
    try {
      if (id != kHealth) check_auth(req);
    } catch (const ApiError& e) {
      metrics_.count_error(e.kind);
      set_error(req, res, e.status, e.kind, e.what());
      return;
    }
    if (id == kHealth) {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    } else if (id == kInfo) {
      res.set_content(info(), "application/json");
    } else {
      res.set_content(metrics_.render(), "text/plain; version=0.0.4");
    }
    if (ConnectionState* c = current_connection()) c->start_writing(cfg_.client_timeout_s);
  }

  std::string info() const {
    const Model& m = backend_.model();
    std::string out = "{\"model_id\":";
    append_json_string(out, cfg_.model_name);
    out += ",\"architecture\":";
    append_json_string(out, m.architecture());
    out += std::string(",\"modality\":\"") + (backend_.text() ? "text" : "image") + "\"";
    out += ",\"dim\":" + std::to_string(m.dim());
    out += std::string(",\"pooling\":\"") + pooling_name(cfg_.pooling) + "\"";
    out += ",\"max_input_length\":" + std::to_string(backend_.text() ? backend_.max_length() : 0);
    out += ",\"image_tokens\":" + std::to_string(backend_.text() ? 0 : backend_.image_tokens());
    out += ",\"max_batch_tokens\":" + std::to_string(cfg_.max_batch_tokens);
    out += ",\"max_client_batch_size\":" + std::to_string(cfg_.max_client_batch_size);
    out += ",\"max_concurrent_requests\":" + std::to_string(cfg_.max_concurrent_requests);
    out += ",\"payload_limit\":" + std::to_string(cfg_.payload_limit);
    out += std::string(",\"auto_truncate\":") + (cfg_.auto_truncate ? "true" : "false");
    out += ",\"threads\":" + std::to_string(m.threads());
    out += ",\"isa\":\"" + m.isa() + "\"";
    out += std::string(",\"version\":\"") + kVersionString + "\"}";
    return out;
  }

  void not_found(const httplib::Request& req, httplib::Response& res) {
    metrics_.requests[kOther].fetch_add(1);
    metrics_.count_error(ErrorKind::not_found);
    set_error(req, res, 404, ErrorKind::not_found, "no route " + req.method + " " + req.path);
    if (ConnectionState* c = current_connection()) c->start_writing(cfg_.client_timeout_s);
  }

  const HttpConfig& cfg_;
  const Backend& backend_;
  Batcher& batcher_;
  Metrics& metrics_;
};

}  // namespace

int run_http_server(const HttpConfig& cfg, const Backend& backend, Batcher& batcher,
                    Metrics& metrics) {
  // SIGINT/SIGTERM go to one thread that stops the server; every other thread blocks them
  // (serve_main blocked them before the first thread started; done again for other callers).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  ConnectionLimits limits;
  limits.max_connections = cfg.max_connections;
  limits.max_workers = static_cast<int>(std::min<int64_t>(cfg.max_concurrent_requests + 16, 4096));
  limits.client_timeout_s = cfg.client_timeout_s;
  limits.idle_timeout_s = cfg.idle_timeout_s;
  limits.max_header_bytes = cfg.max_header_bytes;
  LimitedServer svr(limits, metrics);
  // SO_REUSEADDR (restart at once after a stop) but not httplib's SO_REUSEPORT, with which a
  // second server on the same port would start and silently share its connections.
  svr.set_socket_options([](socket_t sock) {
    const int one = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  });
  svr.set_payload_max_length(cfg.payload_limit);
  svr.set_keep_alive_max_count(static_cast<size_t>(limits.max_requests_per_connection));
  svr.set_keep_alive_timeout(static_cast<time_t>(std::ceil(cfg.idle_timeout_s)));
  Routes routes(cfg, backend, batcher, metrics);
  routes.install(svr);

  const int port = svr.bind(cfg.host, cfg.port);
  if (port <= 0) {
    std::fprintf(stderr, "tern serve: error: cannot listen on %s:%d: %s\n", cfg.host.c_str(),
                 cfg.port, std::strerror(errno));
    return 1;
  }
  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    int sig = 0;
    // Wakes on a signal, or on SIGTERM sent to itself below once the server is done.
    while (sigwait(&signals, &sig) == 0) {
      if (done) return;
      std::fprintf(stderr, "tern serve: %s: finishing the requests in flight, then exiting\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      while (!svr.is_running() && !done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      svr.stop();
      return;
    }
  });
  const std::string host =
      cfg.host.find(':') != std::string::npos ? "[" + cfg.host + "]" : cfg.host;
  std::fprintf(stderr, "listening on http://%s:%d\n", host.c_str(), port);
  std::fflush(stderr);
  const bool ok = svr.listen_after_bind();
  done = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  batcher.stop();
  if (!ok) std::fprintf(stderr, "tern serve: error: the listening socket failed\n");
  return 0;
}

}  // namespace tern::server
