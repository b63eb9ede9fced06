// SPDX-License-Identifier: MIT
// AVX2 + F16C conversions, registered only when cpu_features() reports support. The target is switched on by
// a pragma after the includes rather than by a per-file -mavx2: inline functions from shared headers are then
// compiled for the baseline, so the linker can never pick an AVX2 copy of them for baseline code. Tails go
// through the scalar rules of float-bits.h, so every element is bit-identical to the reference.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../convert-kernels.h"
#include "weightsmith/float-bits.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace ws {

namespace {

// One vector of 8 f32 -> 8 bf16 codes in the low halves of 32-bit lanes.
inline __m256i bf16_round8(__m256i x) {
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan_val = _mm256_and_si256(_mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40)),
                                           _mm256_set1_epi32(0xffff));
  const __m256i is_nan =
      _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(rounded, nan_val, is_nan);
}

// f32 -> bf16, 16 elements per iteration: round to nearest even; NaN -> (x >> 16) | 0x40.
void f32_to_bf16_avx2(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = bf16_round8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 4 * i)));
    const __m256i b = bf16_round8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 4 * i + 32)));
    // packus works within 128-bit lanes: fix the order with a cross-lane permute.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * i), packed);
  }
  map_elements<uint32_t, uint16_t, f32_to_bf16>(src, dst, i, n);
}

void bf16_to_f32_avx2(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  const __m256i quiet = _mm256_set1_epi32(0x00400000);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
    const __m256i x = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);
    const __m256i r = _mm256_or_si256(x, _mm256_and_si256(is_nan, quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 4 * i), r);
  }
  map_elements<uint16_t, uint32_t, bf16_to_f32>(src, dst, i, n);
}

// F16C's vcvtps2ph with an explicit round-to-nearest-even immediate ignores MXCSR's rounding mode.
void f32_to_f16_avx2(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * i));
    const __m256 b = _mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * i + 32));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * i), _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * i + 16), _mm256_cvtps_ph(b, _MM_FROUND_TO_NEAREST_INT));
  }
  map_elements<uint32_t, uint16_t, f32_to_f16>(src, dst, i, n);
}

void f16_to_f32_avx2(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
    _mm256_storeu_ps(reinterpret_cast<float*>(d + 4 * i), _mm256_cvtph_ps(h));
  }
  map_elements<uint16_t, uint32_t, f16_to_f32>(src, dst, i, n);
}

// f16 <-> bf16 through an exact f32 intermediate: one rounding, as in the reference.
void f16_to_bf16_avx2(const void* src, void* dst, size_t n) {
  alignas(32) uint32_t tmp[256];
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; i += 256) {
    const size_t m = n - i < 256 ? n - i : 256;
    f16_to_f32_avx2(s + 2 * i, tmp, m);
    f32_to_bf16_avx2(tmp, d + 2 * i, m);
  }
}

void bf16_to_f16_avx2(const void* src, void* dst, size_t n) {
  alignas(32) uint32_t tmp[256];
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; i += 256) {
    const size_t m = n - i < 256 ? n - i : 256;
    bf16_to_f32_avx2(s + 2 * i, tmp, m);
    f32_to_f16_avx2(tmp, d + 2 * i, m);
  }
}

// f32 -> saturating fp8 (the lane-parallel form of float-bits.h's f32_to_fp8_sat): the normal and
// subnormal results are both computed and selected per lane; NaN lanes get the NaN code.
template <int EBITS, int MBITS, int BIAS, bool HAS_INF>
inline __m256i fp8_round8(__m256i x) {
  constexpr int kExpAll = (1 << EBITS) - 1;
  constexpr int kMaxFinite = HAS_INF ? (((kExpAll - 1) << MBITS) | ((1 << MBITS) - 1)) : ((kExpAll << MBITS) | ((1 << MBITS) - 2));
  constexpr int kShift = 23 - MBITS;
  const __m256i ax = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(x, 24), _mm256_set1_epi32(0x80));
  const __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(ax, 23), _mm256_set1_epi32(127));
  // normal: re-bias, round to nearest even on the dropped bits, saturate (also catches +-Inf)
  __m256i r = _mm256_sub_epi32(ax, _mm256_set1_epi32((127 - BIAS) << 23));
  r = _mm256_add_epi32(r, _mm256_add_epi32(_mm256_set1_epi32((1 << (kShift - 1)) - 1),
                                           _mm256_and_si256(_mm256_srli_epi32(r, kShift), _mm256_set1_epi32(1))));
  const __m256i code_n = _mm256_min_epu32(_mm256_srli_epi32(r, kShift), _mm256_set1_epi32(kMaxFinite));
  // subnormal: shift the 24-bit significand by a per-lane count, round to nearest even
  const __m256i shift = _mm256_sub_epi32(_mm256_set1_epi32(23 + (1 - BIAS - MBITS)), e);
  const __m256i mant = _mm256_or_si256(_mm256_and_si256(ax, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x800000));
  __m256i q = _mm256_srlv_epi32(mant, shift);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i rem = _mm256_and_si256(mant, _mm256_sub_epi32(_mm256_sllv_epi32(one, shift), one));
  const __m256i half = _mm256_sllv_epi32(one, _mm256_sub_epi32(shift, one));
  const __m256i up = _mm256_or_si256(_mm256_cmpgt_epi32(rem, half),
                                     _mm256_and_si256(_mm256_cmpeq_epi32(rem, half), _mm256_cmpeq_epi32(_mm256_and_si256(q, one), one)));
  q = _mm256_sub_epi32(q, up);  // up is -1 where rounding up
  const __m256i tiny = _mm256_or_si256(_mm256_cmpgt_epi32(shift, _mm256_set1_epi32(24)),
                                       _mm256_cmpeq_epi32(_mm256_srli_epi32(ax, 23), _mm256_setzero_si256()));
  q = _mm256_andnot_si256(tiny, q);
  const __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(1 - BIAS), e);
  __m256i code = _mm256_blendv_epi8(code_n, q, is_sub);
  const __m256i is_nan = _mm256_cmpgt_epi32(ax, _mm256_set1_epi32(0x7f800000));
  __m256i nan_code;
  if (HAS_INF) {
    nan_code = _mm256_or_si256(_mm256_set1_epi32((kExpAll << MBITS) | (1 << (MBITS - 1))),
                               _mm256_and_si256(_mm256_srli_epi32(ax, kShift), _mm256_set1_epi32((1 << MBITS) - 1)));
  } else {
    nan_code = _mm256_set1_epi32((kExpAll << MBITS) | ((1 << MBITS) - 1));
  }
  code = _mm256_blendv_epi8(code, nan_code, is_nan);
  return _mm256_or_si256(code, sign);
}

template <int EBITS, int MBITS, int BIAS, bool HAS_INF, uint8_t (*Scalar)(uint32_t)>
void f32_to_fp8_avx2(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; ++k)
      v[k] = fp8_round8<EBITS, MBITS, BIAS, HAS_INF>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 4 * i + 32 * k)));
    // Codes are <= 255: two saturating packs, then undo the per-128-bit-lane interleave.
    const __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(v[0], v[1]), _mm256_packus_epi32(v[2], v[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), _mm256_permutevar8x32_epi32(w, order));
  }
  map_elements<uint32_t, uint8_t, Scalar>(src, dst, i, n);
}

}  // namespace

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace ws {

void convert_register_avx2(ConvertTable* t) {
  auto at = [&](DType s, DType d) -> ConvertFn& { return t->fn[static_cast<size_t>(s)][static_cast<size_t>(d)]; };
  at(DType::kF32, DType::kBF16) = f32_to_bf16_avx2;
  at(DType::kBF16, DType::kF32) = bf16_to_f32_avx2;
  at(DType::kF32, DType::kF16) = f32_to_f16_avx2;
  at(DType::kF16, DType::kF32) = f16_to_f32_avx2;
  at(DType::kF16, DType::kBF16) = f16_to_bf16_avx2;
  at(DType::kBF16, DType::kF16) = bf16_to_f16_avx2;
  at(DType::kF32, DType::kF8E4M3) = f32_to_fp8_avx2<4, 3, 7, false, f32_to_e4m3>;
  at(DType::kF32, DType::kF8E5M2) = f32_to_fp8_avx2<5, 2, 15, true, f32_to_e5m2>;
}

}  // namespace ws
