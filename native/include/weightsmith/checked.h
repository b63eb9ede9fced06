// SPDX-License-Identifier: MIT
// Overflow-checked size arithmetic. Every size computed from untrusted input (file headers, shapes, user
// arguments) goes through these; they return false instead of wrapping.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ws {

inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// Product of dims; false on overflow. Multiplies in order, so [2^40, 2^40, 0] overflows (as the reference
// safetensors implementation does) rather than silently producing 0.
inline bool checked_numel(const uint64_t* dims, size_t rank, uint64_t* out) {
  uint64_t n = 1;
  for (size_t i = 0; i < rank; ++i) {
    if (!checked_mul(n, dims[i], &n)) return false;
  }
  *out = n;
  return true;
}

// Largest integer a JavaScript Number holds exactly (2^53 - 1).
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

}  // namespace ws
