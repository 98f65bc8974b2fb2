#pragma once
// The one error type for user-facing failures. Every input path (files, images, text, API
// arguments) throws tern::Error with a message that names the input and the reason; nothing
// asserts or aborts on bad input. The type itself is public: engine/include/tern/error.hpp.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "tern/error.hpp"

namespace tern {

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
