// SPDX-License-Identifier: MIT
// AVX-512 mask application: each mask byte or word drives a zero-masking move (vmovdqu8/16/32/64 with a k mask),
// the mask bits being used exactly as stored (LSB-first per row). The target is switched on per function after
// the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "weightsmith/sparsity.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ws {

namespace {

// 64 mask bits of a row from bit c (c a multiple of 8), fewer at the row's end (the rest zero).
inline uint64_t bits64(const uint8_t* row, size_t c, size_t cols) {
  uint64_t m = 0;
  const size_t bytes = (cols - c + 7) / 8;
  std::memcpy(&m, row + c / 8, bytes < 8 ? bytes : 8);
  if (cols - c < 64) m &= (uint64_t{1} << (cols - c)) - 1;
  return m;
}

}  // namespace

void sparsity_apply_avx512(const uint8_t* w, size_t es, size_t rows, size_t cols, const uint8_t* bits, uint8_t* out) {
  const size_t rb = mask_row_bytes(cols);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = bits + r * rb;
    const uint8_t* src = w + r * cols * es;
    uint8_t* dst = out + r * cols * es;
    for (size_t c = 0; c < cols; c += 64) {
      const uint64_t m = bits64(row, c, cols);
      const size_t n = cols - c < 64 ? cols - c : 64;
      const size_t bytes = n * es;
      const uint8_t* s = src + c * es;
      uint8_t* d = dst + c * es;
      // 64 elements = 64 * es bytes: chunks of 64 bytes, each with the matching slice of m.
      for (size_t off = 0; off < bytes; off += 64) {
        const size_t e0 = off / es, ecount = (bytes - off < 64 ? bytes - off : 64) / es;
        const uint64_t sub = (m >> e0) & (ecount >= 64 ? ~uint64_t{0} : ((uint64_t{1} << ecount) - 1));
        const uint64_t lanes = bytes - off < 64 ? (uint64_t{1} << (bytes - off)) - 1 : ~uint64_t{0};  // valid bytes
        const __mmask64 load = static_cast<__mmask64>(lanes);
        const __m512i v = _mm512_maskz_loadu_epi8(load, s + off);
        __m512i z;
        switch (es) {
          case 1: z = _mm512_maskz_mov_epi8(static_cast<__mmask64>(sub), v); break;
          case 2: z = _mm512_maskz_mov_epi16(static_cast<__mmask32>(sub), v); break;
          case 4: z = _mm512_maskz_mov_epi32(static_cast<__mmask16>(sub), v); break;
          default: z = _mm512_maskz_mov_epi64(static_cast<__mmask8>(sub), v); break;
        }
        _mm512_mask_storeu_epi8(d + off, load, z);
      }
    }
  }
}

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
