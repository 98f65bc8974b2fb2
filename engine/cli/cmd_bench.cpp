#include "engine/cli/commands.hpp"
#include "engine/core/error.hpp"

namespace tern::cli {

int cmd_bench(const Args&) { fail("bench: not implemented yet"); }

}  // namespace tern::cli
