#include "kernels/memory.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>

namespace tern {

AlignedBlock allocate_streamed(size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  AlignedBlock b;
  bytes = std::max<size_t>(bytes, 64);
  const bool huge = bytes >= kHugePage;
  const size_t align = huge ? kHugePage : 64;
  if (bytes > ~size_t{0} - align) return b;
  b.bytes = (bytes + align - 1) / align * align;
  if (posix_memalign(&b.data, align, b.bytes) != 0) return AlignedBlock{};
  if (huge) madvise(b.data, b.bytes, MADV_HUGEPAGE);  // advice only: no error if declined
  return b;
}

}  // namespace tern
