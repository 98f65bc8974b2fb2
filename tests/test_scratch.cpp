// engine/core/scratch (the forward passes' buffer cache) and kernels/memory (aligned, huge-page
// advised allocation): reuse, distinct buffers for concurrent holders, alignment, trimming.
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

#include "engine/core/scratch.hpp"
#include "kernels/memory.hpp"
#include "test_util.hpp"

using namespace tern;

TEST_CASE("scratch: a released buffer is reused; buffers held at once are distinct") {
  trim_scratch_cache();
  float* first = nullptr;
  {
    ScratchBuffer a(1000);
    first = a.data();
    a.data()[999] = 1.f;  // the whole size is usable
  }
  {
    ScratchBuffer again(900);  // fits the released one: no new allocation
    CHECK(again.data() == first);
    ScratchBuffer other(900);  // the cached one is taken: a new buffer
    CHECK(other.data() != first);
  }
  // Smallest fit: with a 1000- and a 100000-float buffer free (and nothing else), 500 floats get
  // the small one and 50000 the big one.
  trim_scratch_cache();
  float *big_p = nullptr, *small_p = nullptr;
  {
    ScratchBuffer big(100000), small(1000);
    big_p = big.data();
    small_p = small.data();
  }
  {
    ScratchBuffer s(500);
    ScratchBuffer b(50000);
    CHECK(s.data() == small_p);
    CHECK(b.data() == big_p);
    s.data()[499] = 2.f;
    b.data()[49999] = 3.f;
  }
  CHECK(trim_scratch_cache() >= (100000 + 1000) * sizeof(float));
  CHECK(trim_scratch_cache() == 0);
}

TEST_CASE("scratch: concurrent callers never share a buffer") {
  constexpr int kThreads = 4, kRounds = 200;
  std::vector<std::thread> threads;
  std::vector<int> bad(kThreads, 0);
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([t, &bad] {
      for (int r = 0; r < kRounds; ++r) {
        ScratchBuffer b(4096 + 64 * (r % 7));
        for (int i = 0; i < 4096; ++i) b.data()[i] = float(t);
        std::this_thread::yield();
        for (int i = 0; i < 4096; ++i) bad[t] += b.data()[i] != float(t);
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) CHECK(bad[t] == 0);
  trim_scratch_cache();
}

TEST_CASE("memory: allocate_streamed aligns small blocks to 64 bytes, large ones to 2 MiB pages") {
  const AlignedBlock small = allocate_streamed(100);
  REQUIRE(small.data != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(small.data) % 64 == 0);
  CHECK(small.bytes >= 100);
  std::free(small.data);
  const size_t mib2 = size_t{2} << 20;
  const AlignedBlock large = allocate_streamed(mib2 + 1);
  REQUIRE(large.data != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(large.data) % mib2 == 0);
  CHECK(large.bytes == 2 * mib2);  // whole pages
  static_cast<char*>(large.data)[large.bytes - 1] = 1;
  std::free(large.data);
  CHECK(allocate_streamed(~size_t{0} - 8).data == nullptr);  // no overflow, no allocation
}
