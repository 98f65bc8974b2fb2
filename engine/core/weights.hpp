#pragma once
// The .tern weight file (a safetensors file with Tern metadata; spec in docs/FORMAT.md).
// open() maps the file read-only and validates the header and tensor table completely before any
// tensor is touched; every failure is a tern::Error naming the file and the problem.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.hpp"

namespace tern {

struct TensorInfo {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

class WeightFile {
 public:
  // Throws tern::Error for a missing/unreadable/non-regular file or any malformed content.
  static std::shared_ptr<const WeightFile> open(const std::string& path);
  ~WeightFile();

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  int format_version() const { return format_version_; }
  const std::string& architecture() const { return architecture_; }

  // __metadata__ values ("config", "preprocess", "tokenizer", "vocab", "source", ...).
  bool has_metadata(const std::string& key) const { return metadata_.count(key) != 0; }
  const std::string& metadata(const std::string& key) const;  // throws naming the key
  const std::map<std::string, std::string>& all_metadata() const { return metadata_; }

  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // throws naming the tensor
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // sorted by begin offset

  // The tensor as F32 with exactly `expected_shape`; throws naming the tensor when it is missing
  // or has another shape. A view into the mapping when the tensor is F32 and 64-byte aligned,
  // otherwise a converted / realigned copy. The view keeps the mapping alive.
  Tensor get(const std::string& name, const std::vector<int64_t>& expected_shape) const;

  // Hint, after a model has copied and packed what it needs: the mapped pages are dropped from
  // this process's resident set (they stay in the page cache). Views stay valid; touching one
  // reads its pages back. A loaded model then holds roughly one copy of its weights, not two.
  void release_resident_pages() const;

 private:
  WeightFile() = default;
  std::string path_;
  uint64_t file_size_ = 0;
  int format_version_ = 0;
  std::string architecture_;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::shared_ptr<const std::byte> mapping_;  // whole file
  const std::byte* data_section_ = nullptr;
  uint64_t data_size_ = 0;
  friend struct WeightFileLoader;
};

}  // namespace tern
