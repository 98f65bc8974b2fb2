#pragma once
// Tern reports every failure, in the library and the C++ API alike, by throwing tern::Error
// (a std::runtime_error) whose what() is one line naming the input and the reason.
// The C API (tern/tern_c.h) turns it into a status code and a message.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tern {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// fail("tensor ", name, ": expected shape ", s) — builds the message from its parts and throws.
template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream os;
  (os << ... << std::forward<Parts>(parts));
  throw Error(os.str());
}

}  // namespace tern
