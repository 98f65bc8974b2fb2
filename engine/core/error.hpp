#pragma once
// The one error type for user-facing failures. Every input path (files, images, text, API
// arguments) throws tern::Error with a message that names the input and the reason; nothing
// asserts or aborts on bad input. The type and fail() are public: engine/include/tern/error.hpp.
#include <cstdint>

#include "tern/error.hpp"

namespace tern {

// fail(...) (tern/error.hpp) builds a message from its parts and throws tern::Error.

// Checked 64-bit arithmetic for sizes read from untrusted input.
inline bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}
inline bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_add_overflow(a, b, out);
}

}  // namespace tern
