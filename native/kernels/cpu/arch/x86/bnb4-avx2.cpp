// SPDX-License-Identifier: MIT
// AVX2 kernels for bitsandbytes' 4-bit blocks, byte-identical to kernels/ref/bnb4-ref.cpp: the absmax as an
// integer max over the magnitude bits (NaN and infinity send their block to the reference), the same f32
// reciprocal and products, the bucket as the count of the 15 bounds below s (vector compares), the FP4 code
// through its order map, and the nibble packing by saturating packs. The target is switched on per function
// after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../bnb4-kernels.h"
#include "weightsmith/float-bits.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace ws {

namespace {

// 8 elements from x[i] as f32 bit patterns.
template <DType D>
inline __m256i load8(const uint8_t* x, size_t i) {
  if constexpr (D == DType::kF32) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 4 * i));
  } else if constexpr (D == DType::kBF16) {
    return _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 2 * i))), 16);
  } else {
    return _mm256_castps_si256(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 2 * i))));
  }
}

inline uint32_t hmax_epu32(__m256i v) {
  __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(m));
}

struct Tables {
  __m256 bounds[15];
  __m256i order_lo, order_hi;
};

// The code of each lane of s (finite, in [-1, 1]).
template <bool kIdentity>
inline __m256i code8(__m256 s, const Tables& t) {
  __m256i q = _mm256_setzero_si256();
  for (int i = 0; i < 15; ++i) q = _mm256_sub_epi32(q, _mm256_castps_si256(_mm256_cmp_ps(t.bounds[i], s, _CMP_LT_OQ)));
  if constexpr (kIdentity) return q;
  const __m256i lo = _mm256_permutevar8x32_epi32(t.order_lo, q);
  const __m256i hi = _mm256_permutevar8x32_epi32(t.order_hi, q);
  return _mm256_blendv_epi8(lo, hi, _mm256_cmpgt_epi32(q, _mm256_set1_epi32(7)));
}

// 32 codes (four vectors of 8 in element order) -> 16 bytes, the even element in the high nibble.
inline __m128i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);  // 16 u16 codes in order
  const __m256i cd = _mm256_permute4x64_epi64(_mm256_packus_epi32(c, d), 0xd8);
  const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(ab, cd), 0xd8);  // 32 u8 codes in order
  // Each u16 lane holds (even, odd): even << 4 | odd in its low byte.
  const __m256i pairs = _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi16(bytes, 4), _mm256_set1_epi16(0xf0)), _mm256_srli_epi16(bytes, 8));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(pairs, pairs), 0xd8);
  return _mm256_castsi256_si128(packed);
}

template <DType D, bool kIdentity>
size_t quant_blocks(const Bnb4Codebook& cb, const uint8_t* x, size_t first, size_t nblocks, size_t bs, uint8_t* packed,
                    float* absmax) {
  Tables t;
  for (int i = 0; i < 15; ++i) t.bounds[i] = _mm256_set1_ps(cb.bounds[i]);
  t.order_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb.order));
  t.order_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cb.order + 8));
  const __m256i mag = _mm256_set1_epi32(0x7fffffff);
  const __m256 lo1 = _mm256_set1_ps(-1.0f), hi1 = _mm256_set1_ps(1.0f);
  size_t bad = SIZE_MAX;
  for (size_t b = first; b < first + nblocks; ++b) {
    const size_t lo = b * bs;
    __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
    for (size_t j = 0; j < bs; j += 16) {
      m0 = _mm256_max_epu32(m0, _mm256_and_si256(load8<D>(x, lo + j), mag));
      m1 = _mm256_max_epu32(m1, _mm256_and_si256(load8<D>(x, lo + j + 8), mag));
    }
    const uint32_t mbits = hmax_epu32(_mm256_max_epu32(m0, m1));
    if (mbits >= 0x7f800000u) {  // a NaN or an infinity: the reference computes what torch does
      const size_t r = bnb4_block_ref(cb, x, D, lo, lo + bs, true, packed, absmax + b);
      if (r < bad) bad = r;
      continue;
    }
    const float amax = f32_from_bits(mbits);
    absmax[b] = amax;
    const __m256 vinv = _mm256_set1_ps(1.0f / (amax < kBnbMinAbsmax ? kBnbMinAbsmax : amax));
    for (size_t j = 0; j < bs; j += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        const __m256 v = _mm256_castsi256_ps(load8<D>(x, lo + j + 8 * k));
        q[k] = code8<kIdentity>(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, vinv), lo1), hi1), t);
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(packed + (lo + j) / 2), pack32(q[0], q[1], q[2], q[3]));
    }
  }
  return bad;
}

size_t quant_avx2(const Bnb4Codebook& cb, const uint8_t* x, DType dtype, size_t first, size_t nblocks, size_t bs,
                  uint8_t* packed, float* absmax) {
  bool identity = true;
  for (int i = 0; i < 16; ++i) identity = identity && cb.order[i] == i;
  if (identity) {
    if (dtype == DType::kF32) return quant_blocks<DType::kF32, true>(cb, x, first, nblocks, bs, packed, absmax);
    if (dtype == DType::kBF16) return quant_blocks<DType::kBF16, true>(cb, x, first, nblocks, bs, packed, absmax);
    return quant_blocks<DType::kF16, true>(cb, x, first, nblocks, bs, packed, absmax);
  }
  if (dtype == DType::kF32) return quant_blocks<DType::kF32, false>(cb, x, first, nblocks, bs, packed, absmax);
  if (dtype == DType::kBF16) return quant_blocks<DType::kBF16, false>(cb, x, first, nblocks, bs, packed, absmax);
  return quant_blocks<DType::kF16, false>(cb, x, first, nblocks, bs, packed, absmax);
}

void dequant_avx2(const Bnb4Codebook& cb, const uint8_t* packed, const float* absmax, size_t first, size_t nblocks,
                  size_t bs, float* out) {
  const __m256 t_lo = _mm256_loadu_ps(cb.table), t_hi = _mm256_loadu_ps(cb.table + 8);
  const __m128i low = _mm_set1_epi16(0x0f);
  for (size_t b = first; b < first + nblocks; ++b) {
    const __m256 scale = _mm256_set1_ps(absmax[b]);
    for (size_t i = b * bs, end = i + bs; i < end; i += 16) {
      // 8 bytes -> 16 codes in element order: each 16-bit lane holds (high nibble, low nibble) as two bytes.
      __m128i w;
      std::memcpy(&w, packed + i / 2, 8);
      w = _mm_cvtepu8_epi16(w);
      const __m128i codes = _mm_or_si128(_mm_srli_epi16(w, 4), _mm_slli_epi16(_mm_and_si128(w, low), 8));
      for (int k = 0; k < 2; ++k) {
        const __m256i q = _mm256_cvtepu8_epi32(k == 0 ? codes : _mm_srli_si128(codes, 8));
        const __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t_lo, q), _mm256_permutevar8x32_ps(t_hi, q),
                                          _mm256_castsi256_ps(_mm256_cmpgt_epi32(q, _mm256_set1_epi32(7))));
        _mm256_storeu_ps(out + i + 8 * k, _mm256_mul_ps(v, scale));
      }
    }
  }
}

}  // namespace

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace ws {

Bnb4QuantFn bnb4_quant_avx2_fn() { return quant_avx2; }
Bnb4DequantFn bnb4_dequant_avx2_fn() { return dequant_avx2; }

}  // namespace ws
