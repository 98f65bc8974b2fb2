#pragma once
// A persistent pool of worker threads implementing kernels' Parallel interface.
// - Fixed size, chosen at construction (0 = the cores this process may run on).
// - run(n, fn) hands out tasks dynamically, but task boundaries are set by the caller from the
//   problem shape, so results never depend on the thread count.
// - Workers run with flush-to-zero / denormals-are-zero; the calling thread gets the same mode
//   for the duration of run() and its own MXCSR back afterwards.
// - One run() at a time per pool: concurrent callers are serialised (a model shared by several
//   threads stays correct, it just does not overlap inside one pool).
// - Between jobs a worker spins for up to kSpinMicros before it sleeps on a condition variable,
//   and the caller spins as long for the last worker to finish: a forward pass is dozens of
//   short jobs (one per GEMM, attention, LayerNorm), and waking a sleeping thread costs tens of
//   microseconds each time (measured: DistilBERT, 128 tokens, 2 threads). Only while the pool
//   has no more threads than cores; an oversubscribed pool sleeps at once.
// - fork(): the child has none of the workers. A pool the child inherited runs every job on the
//   calling thread (same results: they never depend on the thread count) and reports one
//   thread; its destructor leaves the parent's threads alone. Nothing hangs waiting for them.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/parallel.hpp"

namespace tern {

// Cores available to this process (sched_getaffinity), at least 1.
int available_cores();
// The largest thread count a pool accepts: kThreadsPerCoreMax x available_cores(). More threads
// than cores only add switching; far more exhaust the process's thread or address-space limits
// (each thread reserves a stack). Also declared in tern/tern.hpp.
constexpr int kThreadsPerCoreMax = 8;
int max_threads();

// RAII: sets FTZ/DAZ on this thread, restores the previous MXCSR on destruction.
class DenormalsFlushScope {
 public:
  DenormalsFlushScope();
  ~DenormalsFlushScope();
  DenormalsFlushScope(const DenormalsFlushScope&) = delete;
  DenormalsFlushScope& operator=(const DenormalsFlushScope&) = delete;

 private:
  unsigned saved_;
};

class ThreadPool final : public Parallel {
 public:
  // threads: 0 = available_cores(); negative or over max_threads() is a tern::Error, and so is
  // a worker thread the system cannot create (the error names the count reached and why; the
  // workers already started are stopped and joined first, so nothing hangs or leaks).
  explicit ThreadPool(int threads = 0);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  static constexpr int kSpinMicros = 200;

  int num_threads() const override {
    return forked() ? 1 : static_cast<int>(workers_.size()) + 1;
  }
  void run(int64_t n, TaskFn fn, void* ctx) override;

 private:
  bool forked() const;  // this process is a fork of the one that created the pool
  void worker_loop();
  void drain();
  void stop_workers();

  std::vector<std::thread> workers_;
  uint64_t forks_at_start_ = 0;  // the process's fork count when the workers were started
  std::mutex run_mutex_;  // serialises run() callers
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  bool spin_ = false;  // no more threads than cores
  // A new job is published by storing fn_, ctx_, n_ and then generation_ (release), under
  // mutex_; spinning workers read generation_ (acquire) without the lock, sleeping ones under it.
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};  // set with a generation bump, under mutex_
  // The job in flight.
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};  // workers still inside the current job
};

}  // namespace tern
