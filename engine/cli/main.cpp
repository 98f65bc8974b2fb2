// `tern`: the command-line front end. See `tern --help`.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>

#include "engine/cli/commands.hpp"
#include "engine/frontend/output.hpp"
#include "engine/frontend/text.hpp"
#include "tern/tern.hpp"
#include "engine/server/serve.hpp"

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
    "  tern serve MODEL.tern [--port 8080] ...  an HTTP embedding server (TEI and OpenAI APIs)\n"
    "  tern --version                       version, CPU features, active ISA\n"
    "\n"
    "Run `tern COMMAND --help` for the options of each command.\n"
    "Options: --name VALUE or --name=VALUE; `--` ends the options.\n"
    "Environment: TERN_ISA=scalar|avx2|avx512 caps the instruction set the kernels use.\n"
    "Exit status: 0 success, 1 an error (one line on stderr; a failed write to standard output is\n"
    "one), 2 a usage error with no arguments, 70 an internal error.\n";

// A closed standard descriptor would be reused by the next open(): a model, text or output file
// would then receive what is printed. Each closed one is held by /dev/null, opened so that using
// it fails: reading "stdin" is refused as closed, writing "stdout" is a write error.
void hold_closed_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int held = ::open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
    if (held >= 0 && held != fd) {
      ::dup2(held, fd);
      ::close(held);
    }
  }
}

int run(const std::string& cmd, const tern::cli::Args& args) {
  using namespace tern;
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    frontend::write_stdout(kUsage);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    frontend::write_stdout(std::string("tern ") + kVersionString + "\n" + describe_cpu() + "\n");
    return 0;
  }
  if (cmd == "info") return cli::cmd_info(args);
  if (cmd == "embed") return cli::cmd_embed(args);
  if (cmd == "tokenize") return cli::cmd_tokenize(args);
  if (cmd == "bench") return cli::cmd_bench(args);
  if (cmd == "serve") return server::serve_main(args);
  std::fprintf(stderr, "tern: unknown command '%s' (see tern --help)\n",
               frontend::printable(cmd).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tern;
  hold_closed_standard_fds();
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  const std::string label = frontend::printable(cmd);
  cli::Args args(argv + 2, argv + argc);
  try {
    const int rc = run(cmd, args);
    // Every command's output, however it was printed, reaches standard output or is an error.
    frontend::flush_stdout();
    return rc;
  } catch (const Error& e) {
    std::fprintf(stderr, "tern %s: error: %s\n", label.c_str(),
                 frontend::one_line(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tern %s: error: out of memory\n", label.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tern %s: internal error: %s\n", label.c_str(),
                 frontend::one_line(e.what()).c_str());
    return 70;
  }
}
