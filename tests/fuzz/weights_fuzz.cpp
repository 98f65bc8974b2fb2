// libFuzzer target for the weight-file reader: the safetensors header parser on the raw input,
// and the whole-file load (WeightFile::open + get() of every tensor) on the input as a file.
// Not part of the default build: `bash scripts/fuzz.sh 60 weights_fuzz` builds it (-DTERN_FUZZ=ON)
// and runs it from seeds (make_seeds.py + make_weights_seeds.py). By hand, from the repository root:
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iengine/include \
//     tests/fuzz/weights_fuzz.cpp engine/core/weights.cpp engine/core/safetensors_header.cpp \
//     engine/core/tensor.cpp -o build-fuzz/weights_fuzz
//   /usr/bin/python3 tests/fuzz/make_weights_seeds.py build-fuzz/corpus-weights
//   build-fuzz/weights_fuzz -max_len=4096 -max_total_time=60 build-fuzz/corpus-weights
//
// Any tern::Error is an expected outcome; a crash, a sanitizer report, a hang or an exception
// of another type is a bug.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/core/error.hpp"
#include "engine/core/safetensors_header.hpp"
#include "engine/core/weights.hpp"

namespace {

// One in-memory file reused for every input; opened through /proc so the reader sees a path.
const std::string& scratch_path(int* fd_out) {
  static int fd = ::memfd_create("tern_weights_fuzz", MFD_CLOEXEC);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  *fd_out = fd;
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    tern::parse_safetensors_header(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const tern::Error&) {
  }

  int fd = -1;
  const std::string& path = scratch_path(&fd);
  if (fd < 0 || ::ftruncate(fd, 0) != 0) return 0;
  if (size != 0 && ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  try {
    auto w = tern::WeightFile::open(path);
    for (const tern::TensorInfo& t : w->tensors()) {
      tern::Tensor x = w->get(t.name, t.shape);
      volatile float sink = 0;
      for (int64_t i = 0; i < x.numel(); ++i) sink = sink + x.f32()[i];
    }
  } catch (const tern::Error&) {
  }
  return 0;
}
