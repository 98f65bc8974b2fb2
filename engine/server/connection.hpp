#pragma once
// Per-connection limits on top of cpp-httplib. httplib parses the requests; its own socket loop
// has only per-read timeouts and no bound on the number of header lines, so this server runs
// each connection through its own Stream, which enforces:
//   - a deadline for a whole request (headers and body) and for a whole response,
//   - a cap on request line + header bytes (431),
//   - an idle timeout between keep-alive requests, and a prompt close when the server stops.
// A connection over --max-connections is answered 503 by the accepting thread and closed.
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

namespace tern::server {

struct Metrics;

// What the handlers and the error handler of the current thread's connection may look at.
struct ConnectionState {
  enum class Phase { headers, body, handling, writing };
  Phase phase = Phase::headers;
  std::chrono::steady_clock::time_point deadline;
  size_t header_bytes = 0;
  bool header_overflow = false;
  bool timed_out = false;
  bool must_close = false;  // after this response (e.g. a request body left unread)
  void start_writing(double seconds);
};
ConnectionState* current_connection();  // nullptr outside a connection's thread

struct ConnectionLimits {
  int max_connections = 256;
  double client_timeout_s = 30;
  double idle_timeout_s = 5;
  size_t max_header_bytes = 16384;
  int max_requests_per_connection = 1000;
};

// A worker per connection, created on demand up to max_connections.
class ConnectionPool : public httplib::TaskQueue {
 public:
  ConnectionPool(int max_threads, Metrics& metrics);
  ~ConnectionPool() override;
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

 private:
  void worker();
  const size_t max_threads_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::list<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool shutdown_ = false;
};

class LimitedServer : public httplib::Server {
 public:
  LimitedServer(const ConnectionLimits& limits, Metrics& metrics);
  // bind_to_port / bind_to_any_port, then a listen backlog that fits bursts of clients
  // (httplib's is 5). Returns the port, or -1.
  int bind(const std::string& host, int port);

 private:
  bool process_and_close_socket(socket_t sock) override;
  ConnectionLimits limits_;
  Metrics& metrics_;
};

}  // namespace tern::server
