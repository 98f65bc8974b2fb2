#include <cstdio>

#include "engine/cli/commands.hpp"
#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"

namespace tern::cli {

int cmd_info(const Args& args) {
  if (args.size() == 1 && args[0] == "--cpu") {
    std::printf("%s\n", describe_cpu().c_str());
    return 0;
  }
  fail("info: reading weight files is not implemented yet");
}

}  // namespace tern::cli
