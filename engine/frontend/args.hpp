#pragma once
// Command-line arguments, parsed one way for every front end that takes them.
//
//   --name VALUE and --name=VALUE   an option's value (a separate VALUE must not look like an
//                                   option: give `--name=-x` for a value starting with '-')
//   --list A B C                    a list option takes every argument up to the next option
//   --                              ends the options: everything after it is a plain argument (or
//                                   one more value of the list option it follows)
//   -5, -0.5, -                     not options: a '-' followed by a digit or '.', and '-' alone,
//                                   are plain arguments (no option starts with a digit)
// Errors are tern::Error with a one-line message naming the option.
#include <cstdint>
#include <string>
#include <vector>

namespace tern::frontend {

// True when `arg` is an option by the rules above (before any `--`).
bool looks_like_option(const std::string& arg);

// Parses a decimal integer (optional '-', digits only, no spaces) within [lo, hi]; `what` names it
// in the error ("--batch: expected an integer from 1 to 4096, got 'x'").
int64_t parse_int(const std::string& what, const std::string& text, int64_t lo, int64_t hi);

class ArgParser {
 public:
  // command: "tern embed", for "unknown option --x (see tern embed --help)".
  ArgParser(std::vector<std::string> args, std::string command);

  // Moves to the next argument; false when there are none left.
  bool next();
  // The current argument: an option's name (without any "=VALUE") or a plain argument.
  const std::string& arg() const { return name_; }
  bool is_option() const { return option_; }
  bool is(const char* name) const { return option_ && name_ == name; }
  bool is(const char* a, const char* b) const { return is(a) || is(b); }

  // The current option's value: "=VALUE" or the next argument.
  std::string value();
  int64_t int_value(int64_t lo, int64_t hi);
  // The current option is a flag: an "=VALUE" is an error.
  void flag() const;
  // The current list option's values: one or more arguments up to the next option.
  std::vector<std::string> values();
  // Throws "unknown option X (see COMMAND --help)".
  [[noreturn]] void unknown() const;

 private:
  std::vector<std::string> args_;
  std::string command_;
  size_t next_ = 0;
  bool after_dashdash_ = false;
  bool option_ = false;
  bool has_inline_ = false;
  std::string name_, inline_;
};

}  // namespace tern::frontend
