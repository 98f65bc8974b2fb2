#pragma once
// The image inputs of `tern embed` and `tern similarity`: a file stands for itself, a directory for
// the .jpg/.jpeg/.png files under it, recursively, sorted by path. Symlinked directories are not
// followed; dangling symlinks, non-regular files with an image name and unreadable directories
// are skipped, and their count printed on stderr as "COMMAND: DIR: skipped ...". A directory
// holding no image, or one that cannot be listed, is a tern::Error.
#include <string>
#include <vector>

namespace tern::cli {

void add_image_input(const std::string& arg, const char* command, std::vector<std::string>& out);

}  // namespace tern::cli
