#include "kernels/peak/peak.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#ifdef __linux__
#include <sched.h>
#endif

#include "kernels/peak/peak_config.hpp"

namespace tern::peak {

const PeakConfig& peak_config(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return peak_config_avx512();
    case Isa::avx2:
      return peak_config_avx2();
    case Isa::scalar:
      break;
  }
  return peak_config_scalar();
}

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// About 0.25 ms of the loop per run. The machines this runs on are shared: a run as long as a
// scheduler time slice (a few ms) is almost always interrupted when the load exceeds the core
// count, so long runs read the share of the core this process got, not the core. Kernels are
// timed by their fastest short call; the peak is timed the same way, by its fastest short run,
// which can only under-read (a run cannot finish faster than the hardware allows).
constexpr double kRunSeconds = 2.5e-4;

// Pins the calling thread to the `index`-th CPU of `allowed` (Linux; elsewhere nothing). The
// probe's threads each get their own CPU: left to the scheduler on a loaded machine, two of them
// can share one CPU's run queue for long stretches, and the probe then reads one core as two.
#ifdef __linux__
void pin_to(const cpu_set_t& allowed, int index) {
  int seen = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ != index) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof(one), &one);
    return;
  }
}
#endif

}  // namespace

double measure_fma_peak_gflops(Isa isa, int threads, double seconds) {
  threads = std::max(threads, 1);
  const auto run_loop = peak_config(isa).fma_loop;
  float sink = 0;
  // Calibrate on one thread: iterations that take about kRunSeconds when not interrupted (the
  // fastest of a few tries at each size, so a preempted try does not stop the doubling early).
  int64_t iters = 1 << 10;
  for (;;) {
    double fastest = 1e30;
    for (int k = 0; k < 3; ++k) {
      const double t0 = now_s();
      run_loop(iters, &sink);
      fastest = std::min(fastest, now_s() - t0);
    }
    if (fastest >= kRunSeconds || iters > (int64_t{1} << 40)) break;
    iters *= 2;
  }
#ifdef __linux__
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  const bool pin = threads > 1 && sched_getaffinity(0, sizeof(allowed), &allowed) == 0 &&
                   CPU_COUNT(&allowed) >= threads;
  if (pin) pin_to(allowed, 0);
#endif
  // Helper threads stay up for all runs and spin between them, so every run starts all threads
  // within a few hundred ns of each other and pays no thread creation.
  std::atomic<int64_t> generation{0};
  std::atomic<int> done{0};
  std::atomic<bool> quit{false};
  std::vector<float> sinks(threads);
  std::vector<int64_t> flops(threads);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back([&, t] {
#ifdef __linux__
      if (pin) pin_to(allowed, t);
#endif
      int64_t seen = 0;
      for (;;) {
        int64_t g;
        while ((g = generation.load(std::memory_order_acquire)) == seen &&
               !quit.load(std::memory_order_acquire)) {
        }
        if (quit.load(std::memory_order_acquire)) return;
        seen = g;
        flops[t] = run_loop(iters, &sinks[t]);
        done.fetch_add(1, std::memory_order_acq_rel);
      }
    });
  // Runs for `seconds`, then, with several threads, for up to 4x longer while their figure is
  // below 90% of `threads` times the calling thread's own fastest: on a loaded machine the
  // threads may rarely have had cores at the same time. Looking longer cannot bias the figure up.
  double best = 0, best_one = 0;
  const double start = now_s();
  for (int rep = 0;; ++rep) {
    const double elapsed = now_s() - start;
    const bool enough = rep >= 10 && elapsed >= seconds;
    if (enough && (threads == 1 || best >= 0.9 * threads * best_one || elapsed >= 4 * seconds))
      break;
    done.store(0, std::memory_order_relaxed);
    const double t0 = now_s();
    generation.fetch_add(1, std::memory_order_acq_rel);
    flops[0] = run_loop(iters, &sinks[0]);
    const double t_one = now_s() - t0;
    while (done.load(std::memory_order_acquire) < threads - 1) {
    }
    const double dt = now_s() - t0;
    double total = 0;
    for (int64_t f : flops) total += double(f);
    best = std::max(best, total / dt * 1e-9);
    best_one = std::max(best_one, double(flops[0]) / t_one * 1e-9);
  }
  quit.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
#ifdef __linux__
  if (pin) sched_setaffinity(0, sizeof(allowed), &allowed);
#endif
  return best;
}

}  // namespace tern::peak
