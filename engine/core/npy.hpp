#pragma once
// NumPy .npy files (format 1.0/2.0, little-endian, C order): float32 and int32/int64 arrays.
// Writing goes to a temporary file in the same directory and is renamed into place, so a reader
// never sees a half-written file.
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
// Serialised .npy bytes (header + data) for a float32 array.
std::string npy_bytes_f32(const float* data, const std::vector<int64_t>& shape);
// Writes `bytes` to `path` atomically (temp file + fsync + rename). Throws tern::Error.
void write_file_atomic(const std::string& path, const std::string& bytes);
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace tern
