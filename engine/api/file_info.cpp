// tern::describe_file and tern::read_tensor_f32: a weight file's header for `tern info` and other
// front ends, without building a model.
#include "engine/core/error.hpp"
#include "engine/core/weights.hpp"
#include "tern/tern.hpp"

namespace tern {

const std::string* FileInfo::find(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

FileInfo describe_file(const std::string& path) {
  const auto w = WeightFile::open(path);
  FileInfo info;
  info.path = w->path();
  info.file_size = w->file_size();
  info.format_version = w->format_version();
  info.architecture = w->architecture();
  for (const auto& kv : w->all_metadata()) info.metadata.push_back(kv);
  for (const TensorInfo& t : w->tensors())
    info.tensors.push_back({t.name, dtype_name(t.dtype), t.shape, t.begin, t.end - t.begin});
  return info;
}

std::vector<float> read_tensor_f32(const std::string& path, const std::string& name) {
  const auto w = WeightFile::open(path);
  const TensorInfo& info = w->info(name);
  const Tensor t = w->get(name, info.shape);
  const float* v = t.f32();
  return std::vector<float>(v, v + t.numel());
}

}  // namespace tern
