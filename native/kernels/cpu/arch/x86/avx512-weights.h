// SPDX-License-Identifier: MIT
// Internal, AVX-512 only: 16 f32/f16/bf16 weights as f32 bit patterns. Include it after the file's
// `#pragma GCC target("avx512f,...")` (inside the target region), and only from AVX-512 translation units.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "weightsmith/dtype.h"

namespace ws {

template <DType D>
inline __m512i load16_f32_bits(const uint8_t* x, size_t i) {
  if constexpr (D == DType::kF32) {
    return _mm512_loadu_si512(x + 4 * i);
  } else if constexpr (D == DType::kBF16) {
    return _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 2 * i))), 16);
  } else {
    return _mm512_castps_si512(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 2 * i))));
  }
}

}  // namespace ws
