#pragma once
// How kernels run work on several threads without knowing about the engine's thread pool:
// operators take a Parallel* (nullptr = run on the calling thread). Results never depend on the
// thread count: work is split into tasks whose boundaries depend only on the problem shape, or
// (GEMM) into tiles that may follow the thread count but compute every element by the same
// sequence of operations whatever tile it lands in. Either way the bits are the same for any
// number of threads.
#include <cstdint>
#include <type_traits>
#include <utility>

namespace tern {

class Parallel {
 public:
  using TaskFn = void (*)(void* ctx, int64_t task);
  virtual ~Parallel() = default;
  virtual int num_threads() const = 0;
  // Runs fn(ctx, i) for every i in [0, n) and returns when all are done. Tasks may run in any
  // order on any thread; the calling thread takes part.
  virtual void run(int64_t n, TaskFn fn, void* ctx) = 0;
};

// parallel_for(par, n, [&](int64_t i) { ... }) — on the calling thread when par is null.
// With a Parallel, even one task goes through run(), so the floating-point mode the Parallel sets
// (the engine's pool flushes denormals) is the same whatever the thread count.
template <typename F>
void parallel_for(Parallel* par, int64_t n, F&& f) {
  if (par == nullptr) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  using Fn = std::remove_reference_t<F>;
  par->run(
      n, [](void* ctx, int64_t i) { (*static_cast<Fn*>(ctx))(i); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// Tiles of a 2-D grid, row-major task order: f(i, j) for i < ni, j < nj.
template <typename F>
void parallel_for_2d(Parallel* par, int64_t ni, int64_t nj, F&& f) {
  parallel_for(par, ni * nj, [&](int64_t t) { f(t / nj, t % nj); });
}

}  // namespace tern
