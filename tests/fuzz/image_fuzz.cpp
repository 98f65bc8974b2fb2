// libFuzzer target: decode + preprocess on arbitrary bytes. Not part of the default build.
// Any input must give an image or a tern::Error; a crash, sanitizer report or other exception is a
// bug. Build and run (seeds: tests/fuzz/make_image_seeds.py):
//
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
//     -I. -Iengine/include -I/usr/include/stb tests/fuzz/image_fuzz.cpp engine/core/image*.cpp \
//     engine/core/tensor.cpp -o /tmp/image_fuzz
//   /usr/bin/python3 tests/fuzz/make_image_seeds.py /tmp/image_seeds
//   /tmp/image_fuzz -max_total_time=60 -max_len=65536 /tmp/image_corpus /tmp/image_seeds
//
// scripts/fuzz.sh does the same with the tree built under the sanitizers (build-fuzz/). Every crash
// it finds becomes a regression input (tests/fuzz/regressions/image_fuzz/) and a test case.
#include <cstddef>
#include <cstdint>

#include "engine/core/error.hpp"
#include "engine/core/image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tern;
  try {
    const Image img = decode_image(data, size, "fuzz");
    // Decoded images are small here (the input is); both filters, and a crop above the resize
    // so that padding runs too.
    PreprocessConfig cfg = PreprocessConfig::from_profile(size % 2 ? "timm" : "torchvision-v1");
    if (size % 3 == 0) cfg.resize = 16, cfg.crop = 24;
    const Tensor t = preprocess(img, cfg);
    if (t.numel() != 3 * int64_t(cfg.crop) * cfg.crop) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
