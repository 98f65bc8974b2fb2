#include "engine/core/scratch.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "engine/core/error.hpp"
#include "kernels/memory.hpp"

namespace tern {

namespace {

struct Free {
  size_t bytes;
  float* data;
};

struct Cache {
  std::mutex mutex;
  std::vector<Free> free;  // buffers not in use
  size_t free_bytes = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: buffers may be released during exit
  return *c;
}

}  // namespace

ScratchBuffer::ScratchBuffer(size_t floats) {
  if (floats > (size_t{1} << 60) / sizeof(float)) fail("scratch buffer of ", floats, " floats");
  const size_t want = std::max<size_t>(floats, 1) * sizeof(float);
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto best = c.free.end();
    for (auto it = c.free.begin(); it != c.free.end(); ++it)
      if (it->bytes >= want && (best == c.free.end() || it->bytes < best->bytes)) best = it;
    if (best != c.free.end()) {
      data_ = best->data;
      bytes_ = best->bytes;
      c.free_bytes -= best->bytes;
      c.free.erase(best);
      return;
    }
  }
  const AlignedBlock b = allocate_streamed(want);
  if (b.data == nullptr) fail("out of memory allocating a ", want, "-byte activation buffer");
  data_ = static_cast<float*>(b.data);
  bytes_ = b.bytes;
}

ScratchBuffer::~ScratchBuffer() {
  if (data_ == nullptr) return;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.free_bytes + bytes_ <= kKeepBytes) {
      c.free.push_back({bytes_, data_});
      c.free_bytes += bytes_;
      return;
    }
  }
  std::free(data_);
}

size_t trim_scratch_cache() {
  std::vector<Free> drop;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    drop.swap(c.free);
    c.free_bytes = 0;
  }
  size_t bytes = 0;
  for (const Free& f : drop) {
    bytes += f.bytes;
    std::free(f.data);
  }
  return bytes;
}

}  // namespace tern
