#pragma once
// Tensors: dtype, shape, element strides, and 64-byte aligned storage with read-over slack
// (kernels may load up to kTensorSlackBytes past the last element; they never use what they read
// there). Views share storage without copying.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tern {

enum class DType : int { f32 = 0, bf16 = 1 };
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

inline constexpr size_t kTensorAlignment = 64;
inline constexpr size_t kTensorSlackBytes = 64;

// Aligned, uninitialised bytes. Throws tern::Error on allocation failure.
std::shared_ptr<std::byte> aligned_alloc_bytes(size_t bytes);

class Tensor {
 public:
  Tensor() = default;
  // Owns fresh storage, zero-filled.
  explicit Tensor(std::vector<int64_t> shape, DType dtype = DType::f32);
  // Does not own `data`; the caller keeps it alive.
  static Tensor view(void* data, std::vector<int64_t> shape, DType dtype = DType::f32);
  // A view that shares ownership of `owner`, which keeps `data` alive (e.g. a file mapping).
  static Tensor view(std::shared_ptr<std::byte> owner, void* data, std::vector<int64_t> shape,
                     DType dtype = DType::f32);

  DType dtype() const { return dtype_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }  // in elements
  int64_t dim(int i) const { return shape_.at(i < 0 ? i + rank() : i); }
  int64_t numel() const;
  bool empty() const { return data_ == nullptr; }
  bool is_contiguous() const;

  template <typename T>
  T* data() { return reinterpret_cast<T*>(data_); }
  template <typename T>
  const T* data() const { return reinterpret_cast<const T*>(data_); }
  float* f32();  // checks dtype
  const float* f32() const;

  // Same storage, new shape (contiguous tensors only; element count must match).
  Tensor reshape(std::vector<int64_t> shape) const;
  // Rows [begin, end) of the outermost dimension, as a view.
  Tensor slice(int64_t begin, int64_t end) const;

  std::string shape_string() const;  // "[2, 3, 4]"

 private:
  std::shared_ptr<std::byte> storage_;
  std::byte* data_ = nullptr;
  std::vector<int64_t> shape_, strides_;
  DType dtype_ = DType::f32;
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace tern
