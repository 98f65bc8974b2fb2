#include "engine/cli/bench_kernel.hpp"
#include "engine/cli/bench_model.hpp"
#include "engine/cli/commands.hpp"

namespace tern::cli {

// tern bench --kernel NAME ... (bench_kernel.cpp) | tern bench MODEL.tern ... (bench_model.cpp)
int cmd_bench(const Args& args) {
  for (const auto& a : args)
    if (a == "--kernel") return bench_kernel(args);
  return bench_model(args);
}

}  // namespace tern::cli
