#pragma once
// `tern serve MODEL.tern [options]`: the embedding server. args excludes "tern serve".
#include <string>
#include <vector>

namespace tern::server {

int serve_main(const std::vector<std::string>& args);

}  // namespace tern::server
