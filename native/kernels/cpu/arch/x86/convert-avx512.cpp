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

// f32 -> saturating fp8, 16 lanes (the AVX-512 form of float-bits.h's f32_to_fp8_sat; see the AVX2 twin).
template <int EBITS, int MBITS, int BIAS, bool HAS_INF>
inline __m128i fp8_round16(__m512i x) {
  constexpr int kExpAll = (1 << EBITS) - 1;
  constexpr int kMaxFinite = HAS_INF ? (((kExpAll - 1) << MBITS) | ((1 << MBITS) - 1)) : ((kExpAll << MBITS) | ((1 << MBITS) - 2));
  constexpr int kShift = 23 - MBITS;
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i ax = _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff));
  const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(x, 24), _mm512_set1_epi32(0x80));
  const __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(ax, 23), _mm512_set1_epi32(127));
  __m512i r = _mm512_sub_epi32(ax, _mm512_set1_epi32((127 - BIAS) << 23));
  r = _mm512_add_epi32(r, _mm512_add_epi32(_mm512_set1_epi32((1 << (kShift - 1)) - 1), _mm512_and_si512(_mm512_srli_epi32(r, kShift), one)));
  const __m512i code_n = _mm512_min_epu32(_mm512_srli_epi32(r, kShift), _mm512_set1_epi32(kMaxFinite));
  const __m512i shift = _mm512_sub_epi32(_mm512_set1_epi32(23 + (1 - BIAS - MBITS)), e);
  const __m512i mant = _mm512_or_si512(_mm512_and_si512(ax, _mm512_set1_epi32(0x7fffff)), _mm512_set1_epi32(0x800000));
  __m512i q = _mm512_srlv_epi32(mant, shift);
  const __m512i rem = _mm512_and_si512(mant, _mm512_sub_epi32(_mm512_sllv_epi32(one, shift), one));
  const __m512i half = _mm512_sllv_epi32(one, _mm512_sub_epi32(shift, one));
  const __mmask16 up = _mm512_cmpgt_epi32_mask(rem, half) | (_mm512_cmpeq_epi32_mask(rem, half) & _mm512_test_epi32_mask(q, one));
  q = _mm512_mask_add_epi32(q, up, q, one);
  const __mmask16 tiny = _mm512_cmpgt_epi32_mask(shift, _mm512_set1_epi32(24)) |
                         _mm512_cmpeq_epi32_mask(_mm512_srli_epi32(ax, 23), _mm512_setzero_si512());
  q = _mm512_maskz_mov_epi32(static_cast<__mmask16>(~tiny), q);
  const __mmask16 is_sub = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(1 - BIAS), e);
  __m512i code = _mm512_mask_blend_epi32(is_sub, code_n, q);
  const __mmask16 is_nan = _mm512_cmpgt_epi32_mask(ax, _mm512_set1_epi32(0x7f800000));
  const __m512i nan_code =
      HAS_INF ? _mm512_or_si512(_mm512_set1_epi32((kExpAll << MBITS) | (1 << (MBITS - 1))),
                                _mm512_and_si512(_mm512_srli_epi32(ax, kShift), _mm512_set1_epi32((1 << MBITS) - 1)))
              : _mm512_set1_epi32((kExpAll << MBITS) | ((1 << MBITS) - 1));
  code = _mm512_mask_mov_epi32(code, is_nan, nan_code);
  return _mm512_cvtepi32_epi8(_mm512_or_si512(code, sign));
}

template <int EBITS, int MBITS, int BIAS, bool HAS_INF, uint8_t (*Scalar)(uint32_t)>
void f32_to_fp8_avx512(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), fp8_round16<EBITS, MBITS, BIAS, HAS_INF>(_mm512_loadu_si512(s + 4 * i)));
  }
  map_elements<uint32_t, uint8_t, Scalar>(src, dst, i, n);
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
  at(DType::kF32, DType::kF8E4M3) = f32_to_fp8_avx512<4, 3, 7, false, f32_to_e4m3>;
  at(DType::kF32, DType::kF8E5M2) = f32_to_fp8_avx512<5, 2, 15, true, f32_to_e5m2>;
}

}  // namespace ws
