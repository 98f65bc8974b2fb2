#include "engine/core/weights.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "engine/core/error.hpp"
#include "engine/core/safetensors_header.hpp"

namespace tern {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;
constexpr size_t kMaxRank = 8;
constexpr int kSupportedFormatVersion = 1;
constexpr uint64_t kPaddingLimit = 64;  // a padding entry fills less than one alignment unit
constexpr std::string_view kPadPrefix = "__pad";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// The file is not a safetensors file at all: say what it looks like, if we can tell.
std::string describe_foreign(const std::string& path, const unsigned char* b, uint64_t size) {
  if (size >= 4 && std::memcmp(b, "GGUF", 4) == 0)
    return "is a GGUF file, not a Tern weight file (.tern)";
  if (size >= 4 && std::memcmp(b, "PK\x03\x04", 4) == 0)
    return "is a zip archive (a PyTorch checkpoint?), not a Tern weight file (.tern); convert "
           "checkpoints with weights_tools/export.py";
  if (size >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
    return "is a Python pickle (a PyTorch checkpoint?), not a Tern weight file (.tern); convert "
           "checkpoints with weights_tools/export.py";
  const bool onnx_name = path.size() >= 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
  if (onnx_name || (size >= 3 && b[0] == 0x08 && b[1] < 0x20 && b[2] == 0x12))
    return "is an ONNX model, not a Tern weight file (.tern)";
  return "";
}

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

int parse_format_version(const std::string& path, const std::string& text) {
  int v = 0;
  // At most 9 digits, so v fits an int; nothing is summed once the text is known to be bad.
  bool ok = !text.empty() && text.size() <= 9 && text[0] != '0';
  for (size_t i = 0; ok && i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') ok = false;
    else v = v * 10 + (c - '0');
  }
  if (!ok) fail(path, ": __metadata__.format_version ", quoted(text), " is not a version number");
  if (v > kSupportedFormatVersion)
    fail(path, ": file format version ", v, " is newer than this build supports (",
         kSupportedFormatVersion, ")");
  return v;
}

}  // namespace

// Builds a WeightFile from a validated mapping; every check lives here.
struct WeightFileLoader {
  static std::shared_ptr<const WeightFile> load(const std::string& path);
  static void map_file(WeightFile* w);
  static void read_header(WeightFile* w);
  static void check_metadata(WeightFile* w);
  struct Range {
    TensorInfo info;
    bool padding = false;  // a U8 "__pad..." entry: covers bytes, is not a tensor
  };
  static void check_layout(WeightFile* w, std::vector<Range> all);
};

void WeightFileLoader::map_file(WeightFile* w) {
  const std::string& path = w->path_;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    fail("cannot open weight file ", path, ": ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(path, " is a directory, not a weight file");
  if (!S_ISREG(st.st_mode)) fail(path, " is not a regular file");
  // O_NONBLOCK: if the path was swapped for a FIFO since stat(), open() must not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("cannot open weight file ", path, ": ", std::strerror(errno));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, " is not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  w->file_size_ = size;
  if (size == 0) {
    ::close(fd);
    fail(path, " is empty, not a weight file");
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);
  if (p == MAP_FAILED) fail("cannot map weight file ", path, ": ", std::strerror(map_errno));
  w->mapping_ = std::shared_ptr<const std::byte>(static_cast<const std::byte*>(p),
                                                 [size](const std::byte* q) {
                                                   ::munmap(const_cast<std::byte*>(q), size);
                                                 });
}

void WeightFileLoader::read_header(WeightFile* w) {
  const std::string& path = w->path_;
  const auto* bytes = reinterpret_cast<const unsigned char*>(w->mapping_.get());
  const uint64_t size = w->file_size_;
  const std::string foreign = describe_foreign(path, bytes, size);
  if (size < 8) {
    if (!foreign.empty()) fail(path, " ", foreign);
    fail(path, " is ", size, " bytes, too short for a weight file (the header length alone is 8)");
  }
  const uint64_t n = read_le64(bytes);
  const bool length_ok = n != 0 && n <= kMaxHeaderBytes && n <= size - 8;
  if (!length_ok || bytes[8] != '{') {
    if (!foreign.empty()) fail(path, " ", foreign);
    if (n == 0) fail(path, ": header length is 0");
    if (n > kMaxHeaderBytes)
      fail(path, ": header length ", n, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
    if (n > size - 8)
      fail(path, ": header length ", n, " is larger than the file (", size, " bytes)");
  }
  const std::string_view json(reinterpret_cast<const char*>(bytes + 8), n);
  SafetensorsHeader header;
  try {
    header = parse_safetensors_header(json, kMaxRank);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  w->data_section_ = w->mapping_.get() + 8 + n;
  w->data_size_ = size - 8 - n;

  if (!header.has_metadata)
    fail(path, ": not a Tern weight file (safetensors without __metadata__.format=tern)");
  for (auto& [key, value] : header.metadata) w->metadata_.emplace(key, std::move(value));
  check_metadata(w);

  std::vector<Range> all;
  all.reserve(header.entries.size());
  for (HeaderEntry& e : header.entries) {
    const std::string label = "tensor " + quoted(e.name);
    Range range;
    TensorInfo& t = range.info;
    t.name = std::move(e.name);
    t.begin = e.begin;
    t.end = e.end;
    uint64_t elem_size = 0;
    if (e.dtype == "F32") {
      t.dtype = DType::f32;
      elem_size = 4;
    } else if (e.dtype == "BF16") {
      t.dtype = DType::bf16;
      elem_size = 2;
    } else if (e.dtype == "U8" && starts_with(t.name, kPadPrefix)) {
      elem_size = 1;
      range.padding = true;
    } else {
      fail(path, ": unsupported dtype ", quoted(e.dtype), " for ", label,
           " (supported: F32, BF16)");
    }
    uint64_t count = 1;
    for (uint64_t d : e.shape) {
      if (d > uint64_t{1} << 62)
        fail(path, ": ", label, " dimension ", d, " is too large (the limit is 2^62)");
      if (mul_overflows(count, d, &count))
        fail(path, ": ", label, " shape has an element count that overflows 64 bits");
      t.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t bytes_needed = 0;
    if (mul_overflows(count, elem_size, &bytes_needed))
      fail(path, ": ", label, " shape ", shape_to_string(t.shape), " is too large");
    if (t.end < t.begin)
      fail(path, ": ", label, " data_offsets end ", t.end, " is before begin ", t.begin);
    if (t.end > w->data_size_)
      fail(path, ": ", label, " data_offsets [", t.begin, ", ", t.end,
           "] run past the end of the data section (", w->data_size_,
           " bytes; is the file truncated?)");
    if (t.end - t.begin != bytes_needed)
      fail(path, ": ", label, " data_offsets [", t.begin, ", ", t.end, "] hold ",
           t.end - t.begin, " bytes, but shape ", shape_to_string(t.shape), " ", e.dtype,
           " needs ", bytes_needed);
    if (range.padding && (t.shape.size() != 1 || bytes_needed >= kPaddingLimit))
      fail(path, ": padding entry ", quoted(t.name), " must be a U8 vector shorter than ",
           kPaddingLimit, " bytes");
    all.push_back(std::move(range));
  }
  check_layout(w, std::move(all));
}

void WeightFileLoader::check_metadata(WeightFile* w) {
  const std::string& path = w->path_;
  const auto format = w->metadata_.find("format");
  if (format == w->metadata_.end())
    fail(path, ": not a Tern weight file (safetensors without __metadata__.format=tern)");
  if (format->second != "tern")
    fail(path, ": not a Tern weight file (__metadata__.format is ", quoted(format->second),
         ", expected 'tern')");
  const auto version = w->metadata_.find("format_version");
  if (version == w->metadata_.end()) fail(path, ": __metadata__ has no format_version");
  w->format_version_ = parse_format_version(path, version->second);
  const auto arch = w->metadata_.find("architecture");
  if (arch == w->metadata_.end() || arch->second.empty())
    fail(path, ": __metadata__ has no architecture");
  w->architecture_ = arch->second;
}

// The byte ranges must tile the data section exactly: no overlap, no hole, nothing after.
void WeightFileLoader::check_layout(WeightFile* w, std::vector<Range> all) {
  const std::string& path = w->path_;
  std::sort(all.begin(), all.end(), [](const Range& a, const Range& b) {
    return a.info.begin != b.info.begin ? a.info.begin < b.info.begin : a.info.end < b.info.end;
  });
  auto label = [](const TensorInfo& t) { return "tensor " + quoted(t.name); };
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const Range& r : all) {
    const TensorInfo& t = r.info;
    if (t.begin < covered)
      fail(path, ": ", label(t), " (bytes ", t.begin, "..", t.end, ") overlaps ", label(*previous),
           " (bytes ", previous->begin, "..", previous->end, ")");
    if (t.begin > covered)
      fail(path, ": hole of ", t.begin - covered, " bytes in the data section before ", label(t),
           " (data offset ", covered, ")");
    covered = t.end;
    previous = &t;
  }
  if (covered != w->data_size_)
    fail(path, ": ", w->data_size_ - covered, " trailing bytes after the last tensor (data "
         "section is ", w->data_size_, " bytes, tensors cover ", covered, ")");
  for (Range& r : all) {
    if (r.padding) continue;
    w->index_.emplace(r.info.name, w->tensors_.size());
    w->tensors_.push_back(std::move(r.info));
  }
}

std::shared_ptr<const WeightFile> WeightFileLoader::load(const std::string& path) {
  std::shared_ptr<WeightFile> w(new WeightFile());
  w->path_ = path;
  map_file(w.get());
  read_header(w.get());
  return w;
}

std::shared_ptr<const WeightFile> WeightFile::open(const std::string& path) {
  return WeightFileLoader::load(path);
}

WeightFile::~WeightFile() = default;

const std::string& WeightFile::metadata(const std::string& key) const {
  const auto it = metadata_.find(key);
  if (it == metadata_.end()) fail(path_, " has no metadata entry '", key, "'");
  return it->second;
}

bool WeightFile::has(const std::string& name) const { return index_.count(name) != 0; }

const TensorInfo& WeightFile::info(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) fail("tensor '", name, "' is missing from ", path_);
  return tensors_[it->second];
}

void WeightFile::release_resident_pages() const {
  if (mapping_ && file_size_ > 0)
    ::madvise(const_cast<std::byte*>(mapping_.get()), file_size_, MADV_DONTNEED);
}

Tensor WeightFile::get(const std::string& name, const std::vector<int64_t>& expected_shape) const {
  const TensorInfo& t = info(name);
  if (t.shape != expected_shape)
    fail("tensor '", name, "' has shape ", shape_to_string(t.shape), ", expected ",
         shape_to_string(expected_shape), " (in ", path_, ")");
  const std::byte* src = data_section_ + t.begin;
  const uint64_t file_offset = static_cast<uint64_t>(src - mapping_.get());
  // Kernels may read kTensorSlackBytes past a tensor's end: a view must have that many file bytes
  // after it, or a read could cross the end of the mapping.
  const bool aligned = reinterpret_cast<uintptr_t>(src) % kTensorAlignment == 0;
  const bool slack = file_offset + (t.end - t.begin) + kTensorSlackBytes <= file_size_;
  if (t.dtype == DType::f32 && aligned && slack) {
    auto owner = std::const_pointer_cast<std::byte>(mapping_);
    return Tensor::view(std::move(owner), const_cast<std::byte*>(src), t.shape);
  }
  Tensor out(t.shape);
  float* dst = out.f32();
  const size_t n = static_cast<size_t>(out.numel());
  if (t.dtype == DType::f32) {
    if (n != 0) std::memcpy(dst, src, n * sizeof(float));
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      const uint32_t bits = uint32_t{h} << 16;
      std::memcpy(dst + i, &bits, 4);
    }
  }
  return out;
}

}  // namespace tern
