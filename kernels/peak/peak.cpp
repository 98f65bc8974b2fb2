#include "kernels/peak/peak.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

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

}  // namespace

double measure_fma_peak_gflops(Isa isa, int threads, double seconds) {
  // The fastest of several short runs: on a shared machine any one run may be slowed down, and
  // a peak measured low would flatter every fraction reported against it.
  constexpr int kReps = 10;
  threads = std::max(threads, 1);
  const auto run_loop = peak_config(isa).fma_loop;
  float sink = 0;
  // Calibrate on one thread: iterations that take about seconds / kReps.
  int64_t iters = 1 << 16;
  for (;;) {
    const double t0 = now_s();
    run_loop(iters, &sink);
    if (now_s() - t0 >= seconds / kReps || iters > (int64_t{1} << 40)) break;
    iters *= 2;
  }
  double best = 0;
  for (int rep = 0; rep < kReps; ++rep) {
    std::vector<float> sinks(threads);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    std::vector<int64_t> flops(threads);
    for (int t = 1; t < threads; ++t)
      pool.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        flops[t] = run_loop(iters, &sinks[t]);
      });
    while (ready.load() < threads - 1) std::this_thread::yield();
    const double t0 = now_s();
    go.store(true);
    flops[0] = run_loop(iters, &sinks[0]);
    for (auto& th : pool) th.join();
    const double dt = now_s() - t0;
    double total = 0;
    for (int64_t f : flops) total += double(f);
    best = std::max(best, total / dt * 1e-9);
  }
  return best;
}

}  // namespace tern::peak
