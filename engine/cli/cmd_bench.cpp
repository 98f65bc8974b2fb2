#include "engine/cli/bench_model.hpp"
#include "engine/cli/commands.hpp"
#include "engine/core/error.hpp"

namespace tern::cli {

int cmd_bench(const Args& args) {
  for (const auto& a : args)
    if (a == "--kernel") fail("bench: --kernel is not implemented yet");
  return bench_model(args);  // tern bench MODEL.tern ...
}

}  // namespace tern::cli
