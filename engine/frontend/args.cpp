#include "engine/frontend/args.hpp"

#include <utility>

#include "engine/frontend/text.hpp"
#include "tern/error.hpp"

namespace tern::frontend {

bool looks_like_option(const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-') return false;
  const char c = arg[1];
  return !((c >= '0' && c <= '9') || c == '.');
}

int64_t parse_int(const std::string& what, const std::string& text, int64_t lo, int64_t hi) {
  size_t i = text.size() > 1 && text[0] == '-' ? 1 : 0;
  bool ok = i < text.size();
  int64_t v = 0;
  bool overflow = false;
  for (; ok && i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    if (v > (INT64_MAX - (c - '0')) / 10)
      overflow = true;
    else
      v = v * 10 + (c - '0');
  }
  if (!ok)
    throw Error(what + ": expected an integer from " + std::to_string(lo) + " to " +
                std::to_string(hi) + ", got '" + printable(text) + "'");
  if (text[0] == '-') v = -v;
  if (overflow || v < lo || v > hi)
    throw Error(what + ": " + printable(text) + " is out of range (" + std::to_string(lo) + ".." +
                std::to_string(hi) + ")");
  return v;
}

ArgParser::ArgParser(std::vector<std::string> args, std::string command)
    : args_(std::move(args)), command_(std::move(command)) {}

bool ArgParser::next() {
  for (;;) {
    if (next_ >= args_.size()) return false;
    const std::string& a = args_[next_++];
    has_inline_ = false;
    inline_.clear();
    if (!after_dashdash_ && a == "--") {
      after_dashdash_ = true;
      continue;
    }
    option_ = !after_dashdash_ && looks_like_option(a);
    name_ = a;
    if (option_ && a.compare(0, 2, "--") == 0) {
      const size_t eq = a.find('=');
      if (eq != std::string::npos) {
        name_ = a.substr(0, eq);
        inline_ = a.substr(eq + 1);
        has_inline_ = true;
      }
    }
    return true;
  }
}

std::string ArgParser::value() {
  if (has_inline_) {
    has_inline_ = false;
    return inline_;
  }
  if (next_ >= args_.size()) throw Error(name_ + " needs a value");
  const std::string& v = args_[next_];
  if (!after_dashdash_ && (v == "--" || looks_like_option(v)))
    throw Error(name_ + " needs a value, got the option " + printable(v) + " (write " + name_ +
                "=VALUE for a value that starts with '-')");
  ++next_;
  return v;
}

int64_t ArgParser::int_value(int64_t lo, int64_t hi) {
  const std::string name = name_;
  return parse_int(name, value(), lo, hi);
}

void ArgParser::flag() const {
  if (has_inline_) throw Error(name_ + " takes no value, got '" + printable(inline_) + "'");
}

std::vector<std::string> ArgParser::values() {
  std::vector<std::string> out;
  if (has_inline_) {
    out.push_back(inline_);
    has_inline_ = false;
  }
  while (next_ < args_.size()) {
    const std::string& v = args_[next_];
    if (!after_dashdash_ && v == "--") {
      after_dashdash_ = true;
      ++next_;
      continue;
    }
    if (!after_dashdash_ && looks_like_option(v)) break;
    out.push_back(v);
    ++next_;
  }
  if (out.empty()) throw Error(name_ + " needs at least one value");
  return out;
}

void ArgParser::unknown() const {
  throw Error("unknown option " + printable(name_) + " (see " + command_ + " --help)");
}

}  // namespace tern::frontend
