// Subcommands not built yet. Each is replaced by its own cmd_*.cpp as it lands.
#include "engine/cli/commands.hpp"
#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"

#include <cstdio>

namespace tern::cli {

int cmd_info(const Args& args) {
  if (args.size() == 1 && args[0] == "--cpu") {
    std::printf("%s\n", describe_cpu().c_str());
    return 0;
  }
  fail("info: reading weight files is not implemented yet");
}
int cmd_embed(const Args&) { fail("embed: not implemented yet"); }
int cmd_tokenize(const Args&) { fail("tokenize: not implemented yet"); }
int cmd_bench(const Args&) { fail("bench: not implemented yet"); }

}  // namespace tern::cli
