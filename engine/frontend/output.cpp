#include "engine/frontend/output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "engine/frontend/text.hpp"
#include "tern/error.hpp"

namespace tern::frontend {
namespace {

[[noreturn]] void stdout_failed(int err) {
  throw Error(std::string("cannot write to standard output: ") +
              (err ? std::strerror(err) : "write error"));
}

// The process's umask, read without changing it where Linux allows (other threads may be
// creating files); umask(2) twice otherwise.
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.compare(0, 6, "Umask:") == 0)
      return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  const mode_t m = ::umask(022);
  ::umask(m);
  return m;
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void write_stdout(std::string_view bytes) {
  errno = 0;
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size())
    stdout_failed(errno);
}

void flush_stdout() {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) stdout_failed(errno);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string name = printable(path);
  struct stat st;
  mode_t mode;
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
    mode = st.st_mode & 07777;
  else
    mode = 0666 & ~current_umask();
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0)
    throw Error(name + ": cannot create a temporary file beside it: " + std::strerror(errno));
  const auto failed = [&](const char* what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(name + ": " + what + ": " + std::strerror(err));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      failed("write failed", errno);
    }
    done += static_cast<size_t>(w);
  }
  if (::fchmod(fd, mode) != 0) failed("cannot set the file mode", errno);
  if (::fsync(fd) != 0) failed("write failed", errno);
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(name + ": write failed: " + std::strerror(e));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(name + ": cannot rename the temporary file into place: " + std::strerror(e));
  }
}

std::string npy_bytes_f32(const float* data, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) dict += " ";
    n *= shape[i];
  }
  dict += "), }";
  const size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n) * 4);
  return out;
}

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_file_atomic(path, npy_bytes_f32(data, shape));
}

std::optional<FileId> file_id(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

void check_output_path(const std::string& option, const std::string& path) {
  if (path.empty()) throw Error(option + ": empty file name");
  const std::string name = printable(path);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw Error(option + " " + name + ": is a directory, expected a file name");
  if (path.back() == '/')
    throw Error(option + " " + name + ": expected a file name, not a directory");
  const std::string dir = parent_dir(path);
  if (::stat(dir.c_str(), &st) != 0)
    throw Error(option + " " + name + ": cannot write there: " + printable(dir) + ": " +
                std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    throw Error(option + " " + name + ": cannot write there: " + printable(dir) +
                " is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw Error(option + " " + name + ": cannot write there: " + printable(dir) + ": " +
                std::strerror(errno));
}

}  // namespace tern::frontend
