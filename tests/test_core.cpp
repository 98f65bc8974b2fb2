// Runtime core: CPU detection and the ISA cap, tensors, the thread pool.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xmmintrin.h>

#include <atomic>
#include <cstdlib>
#include <numeric>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/tensor.hpp"
#include "engine/core/thread_pool.hpp"
#include "test_util.hpp"

using namespace tern;

TEST_CASE("cpu: best ISA is supported and the cap is honoured") {
  const Isa best = best_supported_isa();
  CHECK(isa_supported(best));
  CHECK(isa_supported(Isa::scalar));
  CHECK(parse_isa("avx2") == Isa::avx2);
  CHECK_THROWS_AS(parse_isa("bogus"), Error);
  const Isa before = active_isa();
  for (Isa isa : test::supported_isas()) {
    set_isa_cap(isa);
    CHECK(active_isa() == isa);
  }
  set_isa_cap(before);
  if (!isa_supported(Isa::avx512)) CHECK_THROWS_AS(set_isa_cap(Isa::avx512), Error);
  CHECK(describe_cpu().find("active isa") != std::string::npos);
}

TEST_CASE("tensor: shape, strides, views, alignment") {
  Tensor t({2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.strides() == std::vector<int64_t>{12, 4, 1});
  CHECK(reinterpret_cast<uintptr_t>(t.data<float>()) % kTensorAlignment == 0);
  for (int i = 0; i < 24; ++i) CHECK(t.f32()[i] == 0.f);
  std::iota(t.f32(), t.f32() + 24, 0.f);
  Tensor r = t.reshape({6, 4});
  CHECK(r.f32() == t.f32());
  CHECK_THROWS_AS(t.reshape({5, 5}), Error);
  Tensor s = t.slice(1, 2);
  CHECK(s.shape() == std::vector<int64_t>{1, 3, 4});
  CHECK(s.f32()[0] == 12.f);
  CHECK_THROWS_AS(t.slice(1, 3), Error);
  CHECK_THROWS_AS(Tensor({-1, 2}), Error);
  CHECK_THROWS_AS(Tensor({int64_t{1} << 40, int64_t{1} << 40}), Error);
  Tensor b({4}, DType::bf16);
  CHECK_THROWS_AS(b.f32(), Error);
}

TEST_CASE("thread pool: every task runs exactly once, for 1, 2, 3 and 7 threads") {
  for (int threads : {1, 2, 3, 7}) {
    ThreadPool pool(threads);
    CHECK(pool.num_threads() == threads);
    for (int64_t n : {0, 1, 5, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      parallel_for(&pool, n, [&](int64_t i) { hits[i].fetch_add(1); });
      for (int64_t i = 0; i < n; ++i) CHECK(hits[i].load() == 1);
    }
    // 2-D tiles cover the grid once.
    std::vector<std::atomic<int>> grid(7 * 5);
    parallel_for_2d(&pool, 7, 5, [&](int64_t i, int64_t j) { grid[i * 5 + j].fetch_add(1); });
    for (auto& g : grid) CHECK(g.load() == 1);
  }
  CHECK_THROWS_AS(ThreadPool(-1), Error);
  // The documented maximum (8 x cores) is accepted; one more is refused before any thread starts.
  CHECK(max_threads() == kThreadsPerCoreMax * available_cores());
  CHECK(ThreadPool(max_threads()).num_threads() == max_threads());
  CHECK_THROWS_WITH_AS(ThreadPool(max_threads() + 1), doctest::Contains("over the maximum"), Error);
  ThreadPool automatic(0);
  CHECK(automatic.num_threads() == available_cores());
}

TEST_CASE("thread pool: a pool inherited by a forked child runs its jobs there, without hanging") {
  ThreadPool pool(3);
  parallel_for(&pool, 64, [](int64_t) {});  // the workers are up and have run a job
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: no workers here. Every task must still run exactly once, on this thread, and
    // destroying the pool must neither join the parent's threads nor terminate.
    int code = pool.num_threads() == 1 ? 0 : 10;
    std::vector<int> hits(1000, 0);
    parallel_for(&pool, 1000, [&](int64_t i) { ++hits[i]; });  // plain ints: one thread only
    for (int h : hits) code |= h == 1 ? 0 : 20;
#if !defined(__SANITIZE_THREAD__)  // TSan refuses new threads after a multi-threaded fork
    {
      ThreadPool fresh(2);  // a pool made in the child has workers of its own
      std::vector<std::atomic<int>> more(100);
      parallel_for(&fresh, 100, [&](int64_t i) { more[i].fetch_add(1); });
      for (auto& h : more) code |= h.load() == 1 ? 0 : 40;
      code |= fresh.num_threads() == 2 ? 0 : 80;
    }
#endif
    pool.~ThreadPool();  // as at exit; _exit below skips the second destruction
    _exit(code);
  }
  int status = 0;
  bool ended = false;
  for (int i = 0; i < 200 && !ended; ++i) {  // 10 s at most: a hang fails here, not CI's clock
    ended = waitpid(pid, &status, WNOHANG) == pid;
    if (!ended) usleep(50000);
  }
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL("the forked child hung");
  }
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // The parent's pool is untouched.
  CHECK(pool.num_threads() == 3);
  std::vector<std::atomic<int>> hits(100);
  parallel_for(&pool, 100, [&](int64_t i) { hits[i].fetch_add(1); });
  for (auto& h : hits) CHECK(h.load() == 1);
}

TEST_CASE("thread pool: results do not depend on the thread count") {
  // Fixed task boundaries, per-task partial sums combined in task order.
  const auto data = test::random_floats(100000, 7);
  auto run = [&](int threads) {
    ThreadPool pool(threads);
    const int64_t tasks = 37;
    std::vector<float> partial(tasks);
    parallel_for(&pool, tasks, [&](int64_t t) {
      const size_t b = data.size() * t / tasks, e = data.size() * (t + 1) / tasks;
      float s = 0;
      for (size_t i = b; i < e; ++i) s += data[i];
      partial[t] = s;
    });
    return std::accumulate(partial.begin(), partial.end(), 0.f);
  };
  const float one = run(1);
  for (int threads : {2, 3, 7}) CHECK(run(threads) == one);
}

TEST_CASE("thread pool: workers flush denormals, the caller's MXCSR is restored") {
  ThreadPool pool(3);
  const unsigned before = _mm_getcsr();
  std::vector<unsigned> csr(16);
  parallel_for(&pool, 16, [&](int64_t i) {
    csr[i] = _mm_getcsr();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  for (unsigned c : csr) CHECK((c & 0x8040) == 0x8040);
  CHECK(_mm_getcsr() == before);
  // One thread, or one task, runs on the caller with the same mode: results cannot depend on
  // whether denormals were flushed.
  ThreadPool single(1);
  for (int64_t n : {1, 4}) {
    unsigned seen = 0;
    parallel_for(&single, n, [&](int64_t) { seen |= _mm_getcsr(); });
    CHECK((seen & 0x8040) == 0x8040);
    CHECK(_mm_getcsr() == before);
  }
}

TEST_CASE("thread pool: concurrent callers are serialised safely") {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep) parallel_for(&pool, 10, [&](int64_t) { total += 1; });
    });
  for (auto& t : callers) t.join();
  CHECK(total.load() == 4 * 50 * 10);
}
