#include "engine/core/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>

#include "engine/core/error.hpp"

namespace tern {

size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 2; }
const char* dtype_name(DType dtype) { return dtype == DType::f32 ? "F32" : "BF16"; }

std::shared_ptr<std::byte> aligned_alloc_bytes(size_t bytes) {
  uint64_t total = 0;
  if (add_overflows(bytes, kTensorSlackBytes + kTensorAlignment - 1, &total))
    fail("allocation of ", bytes, " bytes is too large");
  total -= total % kTensorAlignment;
  void* p = std::aligned_alloc(kTensorAlignment, total);
  if (p == nullptr) fail("out of memory allocating ", bytes, " bytes");
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(p), [](std::byte* q) { std::free(q); });
}

static std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

static int64_t checked_numel(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("negative dimension in shape ", shape_to_string(shape));
    if (mul_overflows(n, static_cast<uint64_t>(d), &n) || n > (uint64_t{1} << 62))
      fail("shape ", shape_to_string(shape), " has too many elements");
  }
  return static_cast<int64_t>(n);
}

Tensor::Tensor(std::vector<int64_t> shape, DType dtype)
    : shape_(std::move(shape)), dtype_(dtype) {
  const size_t bytes = static_cast<size_t>(checked_numel(shape_)) * dtype_size(dtype);
  storage_ = aligned_alloc_bytes(bytes);
  std::memset(storage_.get(), 0, bytes + kTensorSlackBytes);
  data_ = storage_.get();
  strides_ = contiguous_strides(shape_);
}

Tensor Tensor::view(void* data, std::vector<int64_t> shape, DType dtype) {
  Tensor t;
  checked_numel(shape);
  t.data_ = static_cast<std::byte*>(data);
  t.shape_ = std::move(shape);
  t.strides_ = contiguous_strides(t.shape_);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::view(std::shared_ptr<std::byte> owner, void* data, std::vector<int64_t> shape,
                    DType dtype) {
  Tensor t = view(data, std::move(shape), dtype);
  t.storage_ = std::move(owner);
  return t;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

float* Tensor::f32() {
  if (dtype_ != DType::f32) fail("tensor is ", dtype_name(dtype_), ", expected F32");
  return data<float>();
}
const float* Tensor::f32() const { return const_cast<Tensor*>(this)->f32(); }

Tensor Tensor::reshape(std::vector<int64_t> shape) const {
  if (!is_contiguous()) fail("reshape of a non-contiguous tensor");
  if (checked_numel(shape) != numel())
    fail("cannot reshape ", shape_string(), " to ", shape_to_string(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  t.strides_ = contiguous_strides(t.shape_);
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  if (rank() == 0 || begin < 0 || end < begin || end > shape_[0])
    fail("slice [", begin, ", ", end, ") out of range for ", shape_string());
  Tensor t = *this;
  t.data_ = data_ + static_cast<size_t>(begin * strides_[0]) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

std::string Tensor::shape_string() const { return shape_to_string(shape_); }

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

}  // namespace tern
