// Prometheus text exposition of the server's metrics (see metrics.hpp).
#include "engine/server/metrics.hpp"

#include <cstdio>

namespace tern::server {
namespace {

std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t b = 0;
  while (b < bounds_.size() && v > bounds_[b]) ++b;
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[b];
  sum_ += v;
  ++total_;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return total_;
}

uint64_t Histogram::count_at_most(double bound) const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t n = 0;
  for (size_t b = 0; b < bounds_.size() && bounds_[b] <= bound; ++b) n += counts_[b];
  return n;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard<std::mutex> lock(mutex_);
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t b = 0; b < bounds_.size(); ++b) {
    cumulative += counts_[b];
    out += name + "_bucket{le=\"" + number(bounds_[b]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(total_) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(total_) + "\n";
}

Metrics::Metrics()
    : batch_size({1, 2, 4, 8, 16, 32, 64, 128, 256, 512}),
      batch_tokens({16, 64, 256, 1024, 4096, 16384, 65536}),
      request_seconds({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      inference_seconds({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}) {}

const char* Metrics::route_label(int route) {
  static const char* names[kRoutes] = {"/embed", "/embed_all", "/v1/embeddings", "/tokenize",
                                       "/info",  "/health",    "other"};
  return route >= 0 && route < kRoutes ? names[route] : "other";
}

std::string Metrics::render() const {
  std::string out;
  header(out, "tern_requests_total", "counter", "HTTP requests received, by route.");
  for (int r = 0; r < kRoutes; ++r)
    out += std::string("tern_requests_total{route=\"") + route_label(r) + "\"} " +
           std::to_string(requests[r].load()) + "\n";
  header(out, "tern_errors_total", "counter", "Requests answered with an error, by kind.");
  for (int k = 0; k < static_cast<int>(errors.size()); ++k)
    out += std::string("tern_errors_total{kind=\"") + error_kind_name(static_cast<ErrorKind>(k)) +
           "\"} " + std::to_string(errors[k].load()) + "\n";
  header(out, "tern_inputs_total", "counter", "Inputs embedded.");
  out += "tern_inputs_total " + std::to_string(inputs.load()) + "\n";
  header(out, "tern_tokens_total", "counter",
         "Tokens of the inputs embedded (an image counts --image-tokens).");
  out += "tern_tokens_total " + std::to_string(tokens.load()) + "\n";
  header(out, "tern_queue_inputs", "gauge", "Inputs waiting for the batcher.");
  out += "tern_queue_inputs " + std::to_string(queue_inputs.load()) + "\n";
  header(out, "tern_requests_in_flight", "gauge", "Admitted requests not yet answered.");
  out += "tern_requests_in_flight " + std::to_string(in_flight.load()) + "\n";
  header(out, "tern_rejected_connections_total", "counter",
         "Connections refused over --max-connections.");
  out += "tern_rejected_connections_total " + std::to_string(rejected_connections.load()) + "\n";
  header(out, "tern_open_connections", "gauge", "Open connections, idle ones included.");
  out += "tern_open_connections " + std::to_string(open_connections.load()) + "\n";
  batch_size.render(out, "tern_batch_size", "Inputs per forward pass.");
  batch_tokens.render(out, "tern_batch_tokens", "Padded tokens per forward pass.");
  inference_seconds.render(out, "tern_inference_seconds", "Time of one forward pass.");
  request_seconds.render(out, "tern_request_duration_seconds",
                         "Embedding requests, from arrival to response.");
  return out;
}

}  // namespace tern::server
