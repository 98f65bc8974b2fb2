#pragma once
// Subcommands of the `tern` executable. Each lives in its own cmd_*.cpp, parses its own
// arguments (args excludes the program and subcommand names), prints its own --help, and
// returns the exit status. Errors are thrown as tern::Error; main() prints them as one line.
#include <string>
#include <vector>

namespace tern::cli {

using Args = std::vector<std::string>;

int cmd_info(const Args& args);
int cmd_embed(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_bench(const Args& args);
int cmd_similarity(const Args& args);

}  // namespace tern::cli
