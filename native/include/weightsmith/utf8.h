// SPDX-License-Identifier: MIT
// Strict UTF-8 validation (no overlongs, no surrogates, nothing above U+10FFFF), shared by the parsers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ws {

// True when s[0, n) is valid UTF-8; otherwise false with *bad = the offset of the first invalid sequence.
inline bool utf8_valid(const uint8_t* s, size_t n, size_t* bad) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      *bad = i;
      return false;
    }
    if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) {
      *bad = i;
      return false;
    }
    for (size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) {
        *bad = i;
        return false;
      }
    }
    i += len;
  }
  return true;
}

}  // namespace ws
