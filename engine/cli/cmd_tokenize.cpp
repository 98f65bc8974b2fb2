#include "engine/cli/commands.hpp"
#include "engine/core/error.hpp"

namespace tern::cli {

int cmd_tokenize(const Args&) { fail("tokenize: not implemented yet"); }

}  // namespace tern::cli
