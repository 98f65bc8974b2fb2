// Connection handling with limits (see connection.hpp).
#include "engine/server/connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/server/metrics.hpp"

namespace tern::server {
namespace {

using Clock = std::chrono::steady_clock;

thread_local ConnectionState* t_connection = nullptr;
thread_local bool t_reject = false;  // set while the accepting thread runs a refused connection

int ms_until(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

Clock::time_point after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// poll() for `events` until the deadline; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, ms_until(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

void address(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ip.clear();
  port = 0;
  if (r != 0) return;
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

// httplib::Stream over a socket, buffered, bounded by the connection's deadline and header cap.
class BoundedStream final : public httplib::Stream {
 public:
  BoundedStream(int fd, ConnectionState& state, const ConnectionLimits& limits)
      : fd_(fd), state_(state), limits_(limits) {}

  bool is_readable() const override { return pos_ < len_ || wait_for(fd_, POLLIN, deadline()); }
  bool is_writable() const override { return wait_for(fd_, POLLOUT, deadline()); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == len_ && !fill()) return -1;
    if (len_ == 0) return 0;
    size_t n = std::min(size, len_ - pos_);
    if (state_.phase == ConnectionState::Phase::headers) {
      state_.header_bytes += n;
      if (state_.header_bytes > limits_.max_header_bytes) {
        state_.header_overflow = true;
        return -1;
      }
    }
    std::memcpy(ptr, buf_ + pos_, n);
    pos_ += n;
    if (pos_ == len_) pos_ = len_ = 0;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      if (!wait_for(fd_, POLLOUT, deadline())) {
        state_.timed_out = true;
        return -1;
      }
      const ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return -1;
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

  // Waits up to the idle timeout for the next request's first byte; gives up early when the
  // server stops. EOF (the client closed) is "no request".
  bool wait_for_request(double idle_s, const std::function<bool()>& stopping) {
    if (pos_ < len_) return true;
    const auto end = after(idle_s);
    while (Clock::now() < end && !stopping()) {
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, std::min(100, ms_until(end)));
      if (r > 0) {
        char c;
        const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK);
        return n > 0;
      }
      if (r < 0 && errno != EINTR) return false;
    }
    return false;
  }

 private:
  Clock::time_point deadline() const { return state_.deadline; }

  bool fill() {
    pos_ = len_ = 0;
    for (;;) {
      if (!wait_for(fd_, POLLIN, deadline())) {
        state_.timed_out = true;
        return false;
      }
      const ssize_t n = ::recv(fd_, buf_, sizeof buf_, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      len_ = static_cast<size_t>(n);
      return true;
    }
  }

  int fd_;
  ConnectionState& state_;
  const ConnectionLimits& limits_;
  char buf_[16384];
  size_t pos_ = 0, len_ = 0;
};

// Drains what the client still sends for a moment after our FIN, so that closing with unread
// bytes (a body we refused) does not reset the connection before the client reads our answer.
void linger_close(int fd) {
  ::shutdown(fd, SHUT_WR);
  const auto end = after(1.0);
  char buf[16384];
  size_t drained = 0;
  while (drained < (size_t(8) << 20) && wait_for(fd, POLLIN, end)) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
  ::close(fd);
}

const char kTooManyConnections[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Connection: close\r\nContent-Length: 77\r\n\r\n"
    "{\"error\":\"too many open connections (--max-connections)\",\"error_type\":\"overloaded\"}";

}  // namespace

void ConnectionState::start_writing(double seconds) {
  phase = Phase::writing;
  deadline = after(seconds);
}

ConnectionState* current_connection() {
  return t_connection;
}

ConnectionPool::ConnectionPool(int max_threads, Metrics& metrics)
    : max_threads_(static_cast<size_t>(std::max(1, max_threads))), metrics_(metrics) {}

ConnectionPool::~ConnectionPool() {
  shutdown();
}

void ConnectionPool::enqueue(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!shutdown_ && (idle_ > jobs_.size() || threads_.size() < max_threads_)) {
      jobs_.push_back(std::move(fn));
      if (idle_ < jobs_.size()) threads_.emplace_back([this] { worker(); });
      cv_.notify_one();
      return;
    }
  }
  metrics_.rejected_connections.fetch_add(1);
  t_reject = true;  // fn runs process_and_close_socket, which answers 503 and closes
  fn();
  t_reject = false;
}

void ConnectionPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutdown_ = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
}

void ConnectionPool::worker() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [&] { return shutdown_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) return;  // shutting down with nothing left
    auto fn = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    fn();
    lock.lock();
  }
}

LimitedServer::LimitedServer(const ConnectionLimits& limits, Metrics& metrics)
    : limits_(limits), metrics_(metrics) {}

int LimitedServer::bind(const std::string& host, int port) {
  int bound = -1;
  if (port == 0)
    bound = bind_to_any_port(host);
  else if (bind_to_port(host, port))
    bound = port;
  if (bound > 0) ::listen(svr_sock_, 1024);  // a larger backlog than httplib's 5
  return bound;
}

bool LimitedServer::process_and_close_socket(socket_t sock) {
  if (t_reject) {
    ::send(sock, kTooManyConnections, sizeof kTooManyConnections - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return true;
  }
  const int one = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ConnectionState state;
  t_connection = &state;
  BoundedStream stream(sock, state, limits_);
  auto stopping = [this] { return svr_sock_ == INVALID_SOCKET; };
  bool ok = true;
  for (int served = 0; ok && served < limits_.max_requests_per_connection; ++served) {
    if (!stream.wait_for_request(limits_.idle_timeout_s, stopping)) break;
    state = ConnectionState{};
    state.deadline = after(limits_.client_timeout_s);
    const bool last = served + 1 == limits_.max_requests_per_connection || stopping();
    bool closed = false;
    ok = process_request(stream, last, closed, nullptr) && !closed && !last && !state.timed_out &&
         !state.header_overflow && !state.must_close;
  }
  t_connection = nullptr;
  linger_close(sock);
  return true;
}

}  // namespace tern::server
