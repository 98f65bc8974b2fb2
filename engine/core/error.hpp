#pragma once
// The one error type for user-facing failures. Every input path (files, images, text, API
// arguments) throws tern::Error with a message that names the input and the reason; nothing
// asserts or aborts on bad input. The public API re-exports this type (engine/include/tern/tern.hpp).
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

// Checked 64-bit arithmetic for sizes read from untrusted input.
inline bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}
inline bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_add_overflow(a, b, out);
}

}  // namespace tern
