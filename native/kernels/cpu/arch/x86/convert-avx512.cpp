// SPDX-License-Identifier: MIT
// AVX-512 (F + BW) conversions: 16 lanes per instruction, mask registers for the NaN lanes, and a narrowing
// vpmovdw store instead of pack + permute. Registered only when cpu_features() reports AVX-512 F and BW; the
// target is switched on per function after the includes (see convert-avx2.cpp for why). Tails use the scalar
// rules of float-bits.h, so every element is bit-identical to the reference.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../convert-kernels.h"
#include "weightsmith/float-bits.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsic headers trip a false -Wmaybe-uninitialized (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ws {

namespace {

// f32 -> bf16: round to nearest even; NaN lanes skip the rounding and get the quiet bit.
void f32_to_bf16_avx512(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i inf = _mm512_set1_epi32(0x7f800000);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i bias = _mm512_set1_epi32(0x7fff);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i x = _mm512_loadu_si512(s + 4 * i);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(x, abs_mask), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), one);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(lsb, bias)), 16);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(x, 16), quiet);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * i), _mm512_cvtepi32_epi16(r));
  }
  map_elements<uint32_t, uint16_t, f32_to_bf16>(src, dst, i, n);
}

void bf16_to_f32_avx512(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const __m512i inf = _mm512_set1_epi32(0x7f800000);
  const __m512i quiet = _mm512_set1_epi32(0x00400000);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 2 * i));
    const __m512i x = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(x, abs_mask), inf);
    _mm512_storeu_si512(d + 4 * i, _mm512_mask_or_epi32(x, nan, x, quiet));
  }
  map_elements<uint16_t, uint32_t, bf16_to_f32>(src, dst, i, n);
}

}  // namespace

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

namespace ws {

void convert_register_avx512(ConvertTable* t) {
  auto at = [&](DType s, DType d) -> ConvertFn& { return t->fn[static_cast<size_t>(s)][static_cast<size_t>(d)]; };
  at(DType::kF32, DType::kBF16) = f32_to_bf16_avx512;
  at(DType::kBF16, DType::kF32) = bf16_to_f32_avx512;
}

}  // namespace ws
