// `tern serve`: options, model loading, and the three parts (HTTP, batcher, backend) wired up.
#include "engine/server/serve.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "engine/server/backend.hpp"
#include "engine/server/batcher.hpp"
#include "engine/server/http.hpp"
#include "engine/server/metrics.hpp"
#include "tern/tern.hpp"

namespace tern::server {
namespace {

const char kHelp[] =
    "usage: tern serve MODEL.tern [--host 127.0.0.1] [--port 8080] [--model-name NAME]\n"
    "                  [--threads N] [--pooling cls|mean] [--max-batch-tokens 16384]\n"
    "                  [--max-client-batch-size 32] [--max-concurrent-requests 512]\n"
    "                  [--payload-limit 2000000] [--auto-truncate] [--api-key KEY]\n"
    "                  [--image-tokens N] [--max-connections 10000] [--client-timeout 30]\n"
    "\n"
    "Serves embeddings over HTTP: TEI's POST /embed, /embed_all, /tokenize and OpenAI's\n"
    "POST /v1/embeddings, with GET /info, /health and /metrics (Prometheus). Prints\n"
    "`listening on http://HOST:PORT` on stderr when ready; SIGINT/SIGTERM finish the requests in\n"
    "flight and exit 0.\n"
    "\n"
    "  --host H                   address to bind (default 127.0.0.1: this machine only)\n"
    "  --port P                   port (default 8080; 0 picks a free one, printed)\n"
    "  --model-name NAME          the name /info and /v1/embeddings report (default: the file's\n"
    "                             name without .tern)\n"
    "  --threads N                compute threads (default 0: every core)\n"
    "  --pooling cls|mean         pooling of /embed and /v1/embeddings (default: the model's;\n"
    "                             mean for a model whose default is per token)\n"
    "  --max-batch-tokens N       padded tokens per forward pass (inputs x the longest); 0 turns\n"
    "                             dynamic batching off: each request runs alone\n"
    "  --max-client-batch-size N  inputs per request (more: 422)\n"
    "  --max-concurrent-requests N  requests admitted at once (more: 429)\n"
    "  --payload-limit BYTES      request body size (more: 413)\n"
    "  --auto-truncate            cut texts over the model's length instead of answering 422\n"
    "  --api-key KEY              require `Authorization: Bearer KEY` (all routes but /health);\n"
    "                             the TERN_API_KEY environment variable does the same\n"
    "  --image-tokens N           what one image counts against --max-batch-tokens (default 197)\n"
    "  --max-connections N        open connections at once, idle ones included (more: 503,\n"
    "                             closed; default 10000, or less where the file limit is lower)\n"
    "  --client-timeout SECONDS   to send a whole request and to take a whole response\n"
    "\n"
    "Image models take base64 images or data:image/...;base64, URLs in the same fields as\n"
    "texts; the server never fetches a URL or opens a path named in a request.\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "tern serve: error: %s (see tern serve --help)\n", message.c_str());
  std::exit(2);
}

int64_t parse_int(const std::string& opt, const std::string& v, int64_t lo, int64_t hi) {
  int64_t n = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size())
    usage_error(opt + " takes an integer, got '" + v + "'");
  if (n < lo || n > hi)
    usage_error(opt + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                v);
  return n;
}

double parse_seconds(const std::string& opt, const std::string& v) {
  char* end = nullptr;
  const double s = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(s > 0) || s > 86400)
    usage_error(opt + " takes seconds in (0, 86400], got '" + v + "'");
  return s;
}

std::string stem(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  if (name.size() > 5 && name.substr(name.size() - 5) == ".tern") name.resize(name.size() - 5);
  return name;
}

}  // namespace

int serve_main(const std::vector<std::string>& args) {
  HttpConfig cfg;
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY)
    cfg.max_connections = static_cast<int>(std::clamp<rlim_t>(files.rlim_cur, 128, 10064) -
                                           64);  // fds for the model, logs, ...
  std::string model_path, pooling;
  int threads = 0;
  int64_t image_tokens = 197;
  if (const char* key = std::getenv("TERN_API_KEY")) cfg.api_key = key;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    constexpr int64_t kBig = int64_t(1) << 40;
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--host") {
      cfg.host = value();
    } else if (a == "--port") {
      cfg.port = static_cast<int>(parse_int(a, value(), 0, 65535));
    } else if (a == "--model-name") {
      cfg.model_name = value();
    } else if (a == "--threads") {
      threads = static_cast<int>(parse_int(a, value(), 0, 4096));
    } else if (a == "--pooling") {
      pooling = value();
    } else if (a == "--max-batch-tokens") {
      cfg.max_batch_tokens = parse_int(a, value(), 0, kBig);
    } else if (a == "--max-client-batch-size") {
      cfg.max_client_batch_size = static_cast<size_t>(parse_int(a, value(), 1, 1 << 20));
    } else if (a == "--max-concurrent-requests") {
      cfg.max_concurrent_requests = parse_int(a, value(), 1, 1 << 20);
    } else if (a == "--payload-limit") {
      cfg.payload_limit = static_cast<size_t>(parse_int(a, value(), 1, kBig));
    } else if (a == "--auto-truncate") {
      cfg.auto_truncate = true;
    } else if (a == "--api-key") {
      cfg.api_key = value();
      if (cfg.api_key.empty()) usage_error("--api-key cannot be empty");
    } else if (a == "--image-tokens") {
      image_tokens = parse_int(a, value(), 1, 1 << 20);
    } else if (a == "--max-connections") {
      cfg.max_connections = static_cast<int>(parse_int(a, value(), 1, 65536));
    } else if (a == "--client-timeout") {
      cfg.client_timeout_s = parse_seconds(a, value());
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option " + a);
    } else if (model_path.empty()) {
      model_path = a;
    } else {
      usage_error("one model file only (got '" + model_path + "' and '" + a + "')");
    }
  }
  if (model_path.empty()) usage_error("no model file given");
  if (cfg.model_name.empty()) cfg.model_name = stem(model_path);

  // Before any thread starts (the model's pool, the batcher): SIGINT/SIGTERM must reach only
  // the thread in run_http_server that waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Options load_options;
  load_options.threads = threads;
  auto model = Model::load(model_path, load_options);
  if (pooling.empty()) {
    // The model's own pooling, or mean where that is per token. Named, so that /info says which.
    cfg.pooling = model->default_pooling();
    if (cfg.pooling == Pooling::none) cfg.pooling = Pooling::mean;
  } else {
    try {
      cfg.pooling = parse_pooling(pooling);
    } catch (const Error& e) {
      usage_error(std::string("--pooling: ") + e.what());
    }
    if (cfg.pooling == Pooling::none)
      usage_error("--pooling none: per-token output is POST /embed_all");
    if (cfg.pooling == Pooling::model_default) cfg.pooling = model->default_pooling();
  }
  // One probe input through the model tells whether the pooling applies and whether the
  // per-token output (/embed_all) is a list of token vectors, whatever the architecture.
  bool per_token = false;
  try {
    EmbedOptions probe;
    probe.pooling = cfg.pooling;
    auto run_probe = [&](const EmbedOptions& o) {
      if (model->is_text_model()) return model->embed_text("a", o);
      const int s = model->image_size();
      std::vector<float> zeros(size_t(3) * s * s, 0.f);
      return model->embed_preprocessed(zeros.data(), 1, s, s, o).at(0);
    };
    run_probe(probe);
    probe.pooling = Pooling::none;
    per_token = run_probe(probe).shape.size() == 2;
  } catch (const Error& e) {
    usage_error(std::string("--pooling ") + pooling_name(cfg.pooling) + ": " + e.what());
  }
  const int64_t cost = model->is_text_model() ? model->max_length() : image_tokens;
  if (cfg.max_batch_tokens != 0 && cfg.max_batch_tokens < cost)
    usage_error("--max-batch-tokens " + std::to_string(cfg.max_batch_tokens) +
                " is less than one input may need (" + std::to_string(cost) + ")");

  Metrics metrics;
  const int cores = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  Backend backend(std::move(model), image_tokens, cores, per_token);
  Batcher batcher(backend, metrics, cfg.max_batch_tokens);
  return run_http_server(cfg, backend, batcher, metrics);
}

}  // namespace tern::server
