// Connection handling with limits (see connection.hpp).
#include "engine/server/connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "engine/server/metrics.hpp"

namespace tern::server {
namespace {

using Clock = std::chrono::steady_clock;

thread_local ConnectionState* t_connection = nullptr;

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

  bool has_buffered() const { return pos_ < len_; }

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

ConnectionPool::ConnectionPool(LimitedServer& server, const ConnectionLimits& limits,
                               Metrics& metrics)
    : server_(server), limits_(limits), metrics_(metrics) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0 || ::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error(std::string("epoll: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_[0];
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_[0], &ev);
  reactor_thread_ = std::thread([this] { reactor(); });
}

ConnectionPool::~ConnectionPool() {
  shutdown();
  ::close(epoll_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void ConnectionPool::enqueue(std::function<void()> fn) {
  fn();
}

void ConnectionPool::adopt(int fd) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_ && open_ < limits_.max_connections) {
      ++open_;
      metrics_.open_connections.store(open_);
    } else {
      fd = -fd - 1;
    }
  }
  if (fd < 0) {
    fd = -fd - 1;
    metrics_.rejected_connections.fetch_add(1);
    ::send(fd, kTooManyConnections, sizeof kTooManyConnections - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
    return;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  watch(fd, 0);
}

void ConnectionPool::watch(int fd, int served) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      idle_[fd] = Idle{served, after(limits_.idle_timeout_s)};
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
      ev.data.fd = fd;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) return;
      idle_.erase(fd);
    }
  }
  close_connection(fd);
}

void ConnectionPool::close_connection(int fd) {
  linger_close(fd);
  std::lock_guard<std::mutex> lock(mutex_);
  --open_;
  metrics_.open_connections.store(open_);
}

void ConnectionPool::reactor() {
  epoll_event events[256];
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events, 256, 100);
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      for (auto& [fd, idle] : idle_) {
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        --open_;
      }
      idle_.clear();
      metrics_.open_connections.store(open_);
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_[0]) continue;
      auto it = idle_.find(fd);
      if (it == idle_.end()) continue;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      ready_.emplace_back(fd, it->second.served);
      idle_.erase(it);
    }
    if (idle_workers_ < ready_.size() && workers_.size() < size_t(limits_.max_workers))
      for (size_t k = idle_workers_;
           k < ready_.size() && workers_.size() < size_t(limits_.max_workers); ++k)
        workers_.emplace_back([this] { worker(); });
    if (!ready_.empty()) cv_.notify_all();
    const auto now = Clock::now();
    for (auto it = idle_.begin(); it != idle_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->first, nullptr);
      ::close(it->first);  // idle: nothing unread to linger for
      --open_;
      it = idle_.erase(it);
    }
    metrics_.open_connections.store(open_);
  }
}

void ConnectionPool::worker() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    ++idle_workers_;
    cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
    --idle_workers_;
    if (ready_.empty()) return;  // stopping, nothing left
    auto [fd, served] = ready_.front();
    ready_.pop_front();
    lock.unlock();
    const bool keep = server_.serve(fd, served);
    if (keep)
      watch(fd, served);
    else
      close_connection(fd);
    lock.lock();
  }
}

void ConnectionPool::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !reactor_thread_.joinable()) return;
    stopping_ = true;
  }
  const char c = 1;
  if (::write(wake_[1], &c, 1) < 0) {
  }  // the reactor also wakes every 100 ms
  if (reactor_thread_.joinable()) reactor_thread_.join();
  cv_.notify_all();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

LimitedServer::LimitedServer(const ConnectionLimits& limits, Metrics& metrics)
    : limits_(limits), metrics_(metrics) {
  new_task_queue = [this] {
    pool_ = new ConnectionPool(*this, limits_, metrics_);
    return pool_;
  };
}

int LimitedServer::bind(const std::string& host, int port) {
  int bound = -1;
  if (port == 0)
    bound = bind_to_any_port(host);
  else if (bind_to_port(host, port))
    bound = port;
  if (bound > 0) ::listen(svr_sock_, 4096);  // a larger backlog than httplib's 5
  return bound;
}

bool LimitedServer::process_and_close_socket(socket_t sock) {
  pool_->adopt(sock);  // on the accepting thread: the pool owns the socket from here
  return true;
}

bool LimitedServer::serve(int fd, int& served) {
  ConnectionState state;
  t_connection = &state;
  BoundedStream stream(fd, state, limits_);
  bool keep = true;
  do {
    state = ConnectionState{};
    state.deadline = after(limits_.client_timeout_s);
    const bool last = served + 1 >= limits_.max_requests_per_connection || stopping();
    bool closed = false;
    const bool ok = process_request(stream, last, closed, nullptr);
    ++served;
    keep =
        ok && !closed && !last && !state.timed_out && !state.header_overflow && !state.must_close;
  } while (keep && stream.has_buffered());  // pipelined requests; otherwise wait idle
  t_connection = nullptr;
  return keep;
}

}  // namespace tern::server
