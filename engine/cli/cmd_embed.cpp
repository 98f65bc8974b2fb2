#include "engine/cli/commands.hpp"
#include "engine/core/error.hpp"

namespace tern::cli {

int cmd_embed(const Args&) { fail("embed: not implemented yet"); }

}  // namespace tern::cli
