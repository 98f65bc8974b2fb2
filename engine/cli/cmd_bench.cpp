#include "engine/cli/bench_model.hpp"
#include "engine/cli/commands.hpp"
#include "tern/error.hpp"

namespace tern::cli {

// tern bench MODEL.tern ... (bench_model.cpp). Kernel benchmarks live in bench/kernels.
int cmd_bench(const Args& args) {
  for (const auto& a : args)
    if (a == "--kernel")
      fail(
          "--kernel moved to its own tool: build/tern_kernel_bench gemm ... "
          "(bench/kernels/README.md)");
  return bench_model(args);
}

}  // namespace tern::cli
