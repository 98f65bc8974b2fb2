#pragma once
// Connections on top of cpp-httplib. httplib parses the requests; its own socket loop holds a
// thread per connection, idle or not, and bounds only single reads, so this server replaces it:
//   - idle connections (before their first request and between keep-alive requests) wait in one
//     epoll thread, not in a worker, so thousands of them cost a file descriptor each;
//   - a readable connection goes to a worker thread (created on demand, up to max_workers),
//     which runs httplib's request parser over a Stream that enforces a deadline for a whole
//     request (headers and body) and for a whole response, and a cap on header bytes (431);
//   - at most max_connections are open: one more is answered 503 and closed;
//   - idle connections are closed after idle_timeout_s, and at once when the server stops.
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>
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
  int max_connections = 10000;  // open at once, idle ones included
  int max_workers = 528;        // connections being served at once
  double client_timeout_s = 30;
  double idle_timeout_s = 5;
  size_t max_header_bytes = 16384;
  int max_requests_per_connection = 1000;
};

class LimitedServer;

// httplib's task queue, replaced: the accepting thread hands each new socket to adopt();
// idle sockets wait in epoll; readable ones are served by workers.
class ConnectionPool : public httplib::TaskQueue {
 public:
  ConnectionPool(LimitedServer& server, const ConnectionLimits& limits, Metrics& metrics);
  ~ConnectionPool() override;
  void enqueue(std::function<void()> fn) override;  // runs fn (adopt) on the accepting thread
  void shutdown() override;                         // closes idle ones, finishes active ones

  void adopt(int fd);              // a new connection
  void watch(int fd, int served);  // idle again after `served` requests
  void close_connection(int fd);

 private:
  struct Idle {
    int served;
    std::chrono::steady_clock::time_point deadline;
  };
  void reactor();
  void worker();

  LimitedServer& server_;
  const ConnectionLimits limits_;
  Metrics& metrics_;
  int epoll_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::unordered_map<int, Idle> idle_;
  std::deque<std::pair<int, int>> ready_;  // fd, requests served so far
  std::vector<std::thread> workers_;
  size_t idle_workers_ = 0;
  int open_ = 0;
  bool stopping_ = false;
  std::thread reactor_thread_;
};

class LimitedServer : public httplib::Server {
 public:
  LimitedServer(const ConnectionLimits& limits, Metrics& metrics);
  // bind_to_port / bind_to_any_port, then a listen backlog that fits bursts of clients
  // (httplib's is 5). Returns the port, or -1.
  int bind(const std::string& host, int port);
  // Serves requests on fd while they keep coming without a wait; true: keep the connection
  // (idle), false: close it. `served` counts the connection's requests.
  bool serve(int fd, int& served);
  bool stopping() const { return svr_sock_ == INVALID_SOCKET; }

 private:
  bool process_and_close_socket(socket_t sock) override;
  ConnectionLimits limits_;
  Metrics& metrics_;
  ConnectionPool* pool_ = nullptr;
  friend class ConnectionPool;
};

}  // namespace tern::server
