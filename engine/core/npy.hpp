#pragma once
// Reading NumPy .npy files (format 1.0/2.0, little-endian, C order): float32 and int32/int64
// arrays, for the tests and their tools. Front ends write .npy with engine/frontend/output.hpp.
#include <cstdint>
#include <string>
#include <vector>

namespace tern {

struct NpyArray {
  std::string descr;  // "<f4", "<i4", "<i8"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // raw little-endian data
  int64_t numel() const;
  std::vector<float> as_f32() const;    // <f4 only
  std::vector<int32_t> as_i32() const;  // <i4, or <i8 in int32 range
};

NpyArray read_npy(const std::string& path);

}  // namespace tern
