#pragma once
// Where front ends put their results: standard output, checked, and files written atomically.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::frontend {

// Standard output, checked: a failed write or flush (a full disk, /dev/full, a closed pipe when
// SIGPIPE is ignored) throws tern::Error "cannot write to standard output: REASON".
void write_stdout(std::string_view bytes);
void flush_stdout();

// Writes `bytes` to `path` whole or not at all: a temporary file beside it (same directory),
// fsync, rename over `path`. A new file gets mode 0666 minus the umask, as open(2) would give;
// an existing regular file keeps its mode. Throws tern::Error naming the path.
void write_file_atomic(const std::string& path, std::string_view bytes);

// A float32 array as .npy (format 1.0, little-endian, C order): header and data.
std::string npy_bytes_f32(const float* data, const std::vector<int64_t>& shape);
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// The identity of an existing file (device, inode: the same for every spelling of its path and
// for hard links), or nullopt when it does not exist.
struct FileId {
  uint64_t dev = 0, ino = 0;
  bool operator==(const FileId&) const = default;
};
std::optional<FileId> file_id(const std::string& path);

// Checks before any work that `path` can be written as an output: not empty, not a directory,
// its directory exists. Throws tern::Error naming `option` and the path.
void check_output_path(const std::string& option, const std::string& path);

}  // namespace tern::frontend
