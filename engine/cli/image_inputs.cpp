#include "engine/cli/image_inputs.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/frontend/text.hpp"
#include "tern/error.hpp"

namespace tern::cli {
namespace {

using frontend::printable;

bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

struct Skipped {
  int symlinked_dirs = 0, dangling = 0, special = 0, unreadable = 0;
  int total() const { return symlinked_dirs + dangling + special + unreadable; }
};

std::string plural(int n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The image files under `dir`, recursively, sorted by path.
void add_directory(const std::string& dir, const char* command, std::vector<std::string>& out) {
  namespace fs = std::filesystem;
  std::vector<std::string> found;
  std::vector<fs::path> pending{fs::path(dir)};
  Skipped skipped;
  while (!pending.empty()) {
    const fs::path d = pending.back();
    pending.pop_back();
    std::error_code ec;
    fs::directory_iterator it(d, ec);
    if (ec) {
      if (d == fs::path(dir))
        throw Error(printable(dir) + ": cannot list directory: " + ec.message());
      ++skipped.unreadable;
      continue;
    }
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const fs::path& p = it->path();
      std::error_code e1, e2;
      const fs::file_status own = fs::symlink_status(p, e1);
      if (fs::is_directory(own)) {
        pending.push_back(p);
        continue;
      }
      const fs::file_status target = fs::status(p, e2);
      if (fs::is_symlink(own) && fs::is_directory(target)) {
        ++skipped.symlinked_dirs;
      } else if (!is_image_file(p)) {
        continue;
      } else if (fs::is_regular_file(target)) {
        found.push_back(p.string());
      } else if (fs::is_symlink(own) && !fs::exists(target)) {
        ++skipped.dangling;
      } else {
        ++skipped.special;
      }
    }
    if (ec) {
      if (d == fs::path(dir))
        throw Error(printable(dir) + ": cannot list directory: " + ec.message());
      ++skipped.unreadable;
    }
  }
  if (skipped.total() > 0) {
    std::string what;
    const auto add = [&](int n, const char* one, const char* many) {
      if (n) what += (what.empty() ? "" : ", ") + plural(n, one, many);
    };
    add(skipped.symlinked_dirs, "symlinked directory (not followed)",
        "symlinked directories (not followed)");
    add(skipped.dangling, "dangling symlink", "dangling symlinks");
    add(skipped.special, "image name that is not a regular file",
        "image names that are not regular files");
    add(skipped.unreadable, "unreadable directory", "unreadable directories");
    std::fprintf(stderr, "%s: %s: skipped %s: %s\n", command, printable(dir).c_str(),
                 plural(skipped.total(), "entry", "entries").c_str(), what.c_str());
  }
  if (found.empty())
    throw Error(printable(dir) + ": directory contains no .jpg, .jpeg or .png files");
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

}  // namespace

void add_image_input(const std::string& arg, const char* command, std::vector<std::string>& out) {
  std::error_code ec;
  if (std::filesystem::is_directory(arg, ec))
    add_directory(arg, command, out);
  else
    out.push_back(arg);
}

}  // namespace tern::cli
