#pragma once
// Activation buffers for forward passes, reused across calls instead of allocated fresh each time.
//
// A forward pass needs a few large temporary buffers (ResNet50 at batch 8: four of 26 MB). Fresh
// ones from malloc come from mmap: every call then faults in and zeroes every page (measured on
// ResNet50, 2 threads: the kernel's page clearing was 3% of the samples), and they sit on 4 KiB
// pages. ScratchBuffer takes a buffer from a process-wide cache instead (the smallest free one
// that fits), and gives it back when it goes out of scope; concurrent forward passes get
// different buffers. Buffers of 2 MiB and more are on transparent huge pages where the kernel
// allows it (kernels/memory.hpp). Contents are uninitialised. The cache keeps at most kKeepBytes of free buffers
// (larger ones are freed on release); trim_scratch_cache() frees all free ones.
#include <cstddef>

namespace tern {

class ScratchBuffer {
 public:
  static constexpr size_t kKeepBytes = size_t{1} << 30;

  explicit ScratchBuffer(size_t floats);  // throws tern::Error when memory runs out
  ~ScratchBuffer();
  ScratchBuffer(ScratchBuffer&& o) noexcept : data_(o.data_), bytes_(o.bytes_) {
    o.data_ = nullptr;
  }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(ScratchBuffer&&) = delete;

  float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  size_t bytes_ = 0;  // capacity
};

// Frees every cached buffer not in use; returns the bytes freed.
size_t trim_scratch_cache();

}  // namespace tern
