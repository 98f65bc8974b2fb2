#pragma once
// The server's counters, gauges and histograms, rendered as Prometheus text (GET /metrics).
// Updated from the HTTP threads and the batcher thread; every update is one lock-free atomic
// or a short critical section.
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "engine/server/protocol.hpp"

namespace tern::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  void render(std::string& out, const std::string& name, const std::string& help) const;
  uint64_t count() const;
  uint64_t count_at_most(double bound) const;  // observations <= bound (bound must be a bucket)

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t total_ = 0;
};

struct Metrics {
  Metrics();
  static constexpr int kRoutes =
      7;  // embed, embed_all, v1/embeddings, tokenize, info, health, other
  static const char* route_label(int route);
  std::array<std::atomic<uint64_t>, kRoutes> requests{};
  std::array<std::atomic<uint64_t>, 7> errors{};  // by ErrorKind
  std::atomic<uint64_t> inputs{0};                // inputs embedded
  std::atomic<uint64_t> tokens{0};                // their tokens (images: --image-tokens each)
  std::atomic<int64_t> queue_inputs{0};           // waiting for the batcher
  std::atomic<int64_t> in_flight{0};              // admitted requests not yet answered
  std::atomic<uint64_t> rejected_connections{0};  // over --max-connections
  std::atomic<int64_t> open_connections{0};
  Histogram batch_size;         // inputs per forward pass
  Histogram batch_tokens;       // padded tokens per forward pass
  Histogram request_seconds;    // admitted request, arrival to response
  Histogram inference_seconds;  // one forward pass

  void count_error(ErrorKind k) { errors[static_cast<int>(k)].fetch_add(1); }
  std::string render() const;
};

}  // namespace tern::server
