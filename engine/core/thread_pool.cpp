#include "engine/core/thread_pool.hpp"

#include <pthread.h>
#include <sched.h>
#include <xmmintrin.h>

#include <atomic>
#include <chrono>
#include <new>
#include <system_error>

#include "engine/core/error.hpp"

namespace tern {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

static constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bits 15 (FTZ) and 6 (DAZ)

DenormalsFlushScope::DenormalsFlushScope() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
DenormalsFlushScope::~DenormalsFlushScope() { _mm_setcsr(saved_); }

int max_threads() { return kThreadsPerCoreMax * available_cores(); }

namespace {

// How many fork()s separate this process from the one the program started in: a child of fork()
// increments it (pthread_atfork), so a pool can tell that its workers stayed in the parent.
std::atomic<uint64_t> g_forks{0};
void count_fork_in_child() { g_forks.fetch_add(1, std::memory_order_relaxed); }
const int g_fork_handler = pthread_atfork(nullptr, nullptr, count_fork_in_child);

// The std::thread handles of pools destroyed in a forked child: their threads live in the parent,
// so they can be neither joined nor detached here, and destroying a joinable std::thread
// terminates the program. Kept (reachable) for the life of the process instead.
std::vector<std::thread>* orphaned_workers() {
  static auto* v = new std::vector<std::thread>();
  return v;
}

}  // namespace

bool ThreadPool::forked() const {
  return g_forks.load(std::memory_order_relaxed) != forks_at_start_;
}

ThreadPool::ThreadPool(int threads) {
  if (threads < 0) fail("thread count must be >= 0 (0 = all available cores), got ", threads);
  if (threads > max_threads())
    fail("thread count ", threads, " is over the maximum of ", max_threads(), " (",
         kThreadsPerCoreMax, " x the ", available_cores(), " cores available)");
  if (threads == 0) threads = available_cores();
  spin_ = threads <= available_cores();
  (void)g_fork_handler;
  forks_at_start_ = g_forks.load(std::memory_order_relaxed);
  workers_.reserve(threads - 1);
  for (int i = 1; i < threads; ++i) {
    try {
      workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error& e) {
      stop_workers();
      fail("cannot create worker thread ", i + 1, " of ", threads, ": ", e.what(),
           " (fewer threads may work)");
    }
  }
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);  // ends the spinners' wait too
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

ThreadPool::~ThreadPool() {
  if (forked()) {
    for (auto& t : workers_) orphaned_workers()->push_back(std::move(t));
    // The condition variables may still list the parent's sleeping workers as waiters, and
    // destroying one with waiters blocks forever (glibc); a mutex may have been held by a worker
    // at the fork. Nothing here can wait on them any more: the members are destroyed as fresh
    // objects instead.
    new (&wake_) std::condition_variable();
    new (&done_) std::condition_variable();
    new (&mutex_) std::mutex();
    new (&run_mutex_) std::mutex();
    return;
  }
  stop_workers();
}

void ThreadPool::drain() {
  for (;;) {
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n_) return;
    fn_(ctx_, i);
  }
}

namespace {

// Spins until done() or about kSpinMicros have passed; true if done() became true.
template <typename Done>
bool spin_until(Done done, int micros) {
  using clock = std::chrono::steady_clock;
  const auto until = clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      _mm_pause();
    }
    if (clock::now() >= until) return done();
  }
}

}  // namespace

void ThreadPool::worker_loop() {
  _mm_setcsr(_mm_getcsr() | kFtzDaz);
  uint64_t seen = 0;
  for (;;) {
    const auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!(spin_ && spin_until(fresh, kSpinMicros))) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, fresh);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    drain();
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller may be about to sleep on done_
      done_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t n, TaskFn fn, void* ctx) {
  if (n <= 0) return;
  DenormalsFlushScope ftz;
  if (workers_.empty() || n == 1 || forked()) {  // forked: no workers here, and no locks taken
    for (int64_t i = 0; i < n; ++i) fn(ctx, i);
    return;
  }
  std::lock_guard<std::mutex> serial(run_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain();
  const auto finished = [&] { return active_.load(std::memory_order_acquire) == 0; };
  if (spin_ && spin_until(finished, kSpinMicros)) return;
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, finished);
}

}  // namespace tern
