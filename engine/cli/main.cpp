// `tern`: the command-line front end. See `tern --help`.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "engine/cli/commands.hpp"
#include "engine/core/cpu.hpp"
#include "engine/core/error.hpp"
#include "engine/server/serve.hpp"
#include "tern/version.hpp"

namespace {

const char kUsage[] =
    "tern - CPU inference engine for image and text embeddings\n"
    "\n"
    "usage:\n"
    "  tern info MODEL.tern [--json]        describe a weight file\n"
    "  tern info --cpu                      CPU features and the ISA kernels will use\n"
    "  tern embed MODEL.tern [IMAGE ...] [--text TEXT ...] [--text-file FILE] [-o OUT]\n"
    "  tern tokenize MODEL.tern [--text TEXT ...] [--text-file FILE]\n"
    "  tern bench MODEL.tern [--batch N] [--seq-len N] [--threads N] [--json]\n"
    "  tern bench --kernel gemm --shape MxNxK [--threads N] [--json]\n"
    "  tern serve MODEL.tern [--port 8080] ...  an HTTP embedding server (TEI and OpenAI APIs)\n"
    "  tern --version                       version, CPU features, active ISA\n"
    "\n"
    "Run `tern COMMAND --help` for the options of each command.\n"
    "Environment: TERN_ISA=scalar|avx2|avx512 caps the instruction set the kernels use.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace tern;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  cli::Args args(argv + 2, argv + argc);
  try {
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (cmd == "--version" || cmd == "version") {
      std::printf("tern %s\n%s\n", kVersionString, describe_cpu().c_str());
      return 0;
    }
    if (cmd == "info") return cli::cmd_info(args);
    if (cmd == "embed") return cli::cmd_embed(args);
    if (cmd == "tokenize") return cli::cmd_tokenize(args);
    if (cmd == "bench") return cli::cmd_bench(args);
    if (cmd == "serve") return server::serve_main(args);
    std::fprintf(stderr, "tern: unknown command '%s' (see tern --help)\n", cmd.c_str());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "tern %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tern %s: error: out of memory\n", cmd.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tern %s: internal error: %s\n", cmd.c_str(), e.what());
    return 70;
  }
}
