// SPDX-License-Identifier: MIT
// AVX-512 (F + BW) kernels for bitsandbytes' 4-bit blocks, byte-identical to kernels/ref/bnb4-ref.cpp: the
// absmax as an integer max over the magnitude bits (exact, and it flags NaN and infinity, whose blocks go to the
// reference; 16-bit inputs are compared before widening), the same f32 reciprocal and products, the bucket by
// a 32-cell lookup and one compare where the table allows it (NF4), else by a 4-step branch-free binary search
// over the 16-entry bound table (vpermps), and the nibble packing with vpmovqb. The target is switched on per function
// after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../bnb4-kernels.h"
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

#include "avx512-weights.h"  // inside the target region

namespace ws {

namespace {

// The bucket of each lane of s (finite, in [-1, 1]): the number of bounds below it.
inline __m512i bucket(__m512 s, __m512 bounds) {
  __m512i idx = _mm512_setzero_si512();
  for (int step = 8; step >= 1; step >>= 1) {
    const __m512 b = _mm512_permutexvar_ps(_mm512_add_epi32(idx, _mm512_set1_epi32(step - 1)), bounds);
    idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(b, s, _CMP_LT_OQ), idx, _mm512_set1_epi32(step));
  }
  return idx;
}

// The same bucket by the 32-cell lookup (Bnb4Codebook::cell_lut): the cell's first bound, then one compare.
inline __m512i bucket_lut(__m512 s, __m512 bounds, __m512i base_lo, __m512i base_hi) {
  const __m512 t = _mm512_mul_ps(_mm512_add_ps(s, _mm512_set1_ps(1.0f)), _mm512_set1_ps(16.0f));
  const __m512i cell = _mm512_min_epi32(_mm512_cvttps_epi32(t), _mm512_set1_epi32(31));
  const __m512i q = _mm512_permutex2var_epi32(base_lo, cell, base_hi);
  const __m512 b = _mm512_permutexvar_ps(q, bounds);
  return _mm512_mask_add_epi32(q, _mm512_cmp_ps_mask(b, s, _CMP_LT_OQ), q, _mm512_set1_epi32(1));
}

// The bucket by the 32-cell lookup and two compares (Bnb4Codebook::cell_lut2).
inline __m512i bucket_lut2(__m512 s, __m512 bounds, __m512i base_lo, __m512i base_hi) {
  const __m512 t = _mm512_mul_ps(_mm512_add_ps(s, _mm512_set1_ps(1.0f)), _mm512_set1_ps(16.0f));
  const __m512i cell = _mm512_min_epi32(_mm512_cvttps_epi32(t), _mm512_set1_epi32(31));
  const __m512i q = _mm512_permutex2var_epi32(base_lo, cell, base_hi);
  const __m512i q1 = _mm512_min_epi32(_mm512_add_epi32(q, _mm512_set1_epi32(1)), _mm512_set1_epi32(15));
  const __mmask16 a = _mm512_cmp_ps_mask(_mm512_permutexvar_ps(q, bounds), s, _CMP_LT_OQ);
  const __mmask16 b = _mm512_cmp_ps_mask(_mm512_permutexvar_ps(q1, bounds), s, _CMP_LT_OQ);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i qa = _mm512_mask_add_epi32(q, a, q, one);
  return _mm512_mask_add_epi32(qa, b, qa, one);
}

// The magnitude bits of the 32 16-bit values at x[i] (f16 and bf16 magnitudes order as integers).
inline __m512i mag16(const uint8_t* x, size_t i) {
  return _mm512_and_si512(_mm512_loadu_si512(x + 2 * i), _mm512_set1_epi16(0x7fff));
}

// 16 codes (one per 32-bit lane) -> 8 bytes, the even element in the high nibble.
inline __m128i pack16(__m512i q) {
  return _mm512_cvtepi64_epi8(_mm512_or_si512(_mm512_slli_epi64(q, 4), _mm512_srli_epi64(q, 32)));
}

template <DType D, int kLut>
size_t quant_blocks(const Bnb4Codebook& cb, const uint8_t* x, size_t first, size_t nblocks, size_t bs, uint8_t* packed,
                    float* absmax) {
  const __m512 bounds = _mm512_loadu_ps(cb.bounds);
  const __m512i order = _mm512_loadu_si512(cb.order);
  const __m512i base_lo = _mm512_loadu_si512(cb.cell_base), base_hi = _mm512_loadu_si512(cb.cell_base + 16);
  bool identity = true;
  for (int i = 0; i < 16; ++i) identity = identity && cb.order[i] == i;
  const __m512i mag = _mm512_set1_epi32(0x7fffffff);
  const __m512 lo1 = _mm512_set1_ps(-1.0f), hi1 = _mm512_set1_ps(1.0f);
  size_t bad = SIZE_MAX;
  for (size_t b = first; b < first + nblocks; ++b) {
    const size_t lo = b * bs;
    uint32_t mbits;
    if constexpr (D == DType::kF32) {
      __m512i m0 = _mm512_setzero_si512(), m1 = _mm512_setzero_si512();
      for (size_t j = 0; j < bs; j += 32) {
        m0 = _mm512_max_epu32(m0, _mm512_and_si512(load16_f32_bits<D>(x, lo + j), mag));
        m1 = _mm512_max_epu32(m1, _mm512_and_si512(load16_f32_bits<D>(x, lo + j + 16), mag));
      }
      mbits = _mm512_reduce_max_epu32(_mm512_max_epu32(m0, m1));
    } else {
      // The largest 16-bit magnitude: as an integer over pairs of lanes, then the two halves of each 32-bit lane.
      __m512i m = _mm512_setzero_si512();
      for (size_t j = 0; j < bs; j += 32) m = _mm512_max_epu16(m, mag16(x, lo + j));
      m = _mm512_max_epu16(m, _mm512_srli_epi32(m, 16));
      const uint32_t h = _mm512_reduce_max_epu32(_mm512_and_si512(m, _mm512_set1_epi32(0xffff)));
      if constexpr (D == DType::kBF16) {
        mbits = h << 16;
      } else {
        // f16 -> f32 bits; 0x7c00 and above (infinity, NaN) map to 0x7f800000 and above.
        mbits = h >= 0x7c00u ? 0x7f800000u | h : f32_bits(_cvtsh_ss(static_cast<uint16_t>(h)));
      }
    }
    if (mbits >= 0x7f800000u) {  // a NaN or an infinity: the reference computes what torch does
      const size_t r = bnb4_block_ref(cb, x, D, lo, lo + bs, true, packed, absmax + b);
      if (r < bad) bad = r;
      continue;
    }
    float amax;
    std::memcpy(&amax, &mbits, 4);
    absmax[b] = amax;
    const float inv = 1.0f / (amax < kBnbMinAbsmax ? kBnbMinAbsmax : amax);
    const __m512 vinv = _mm512_set1_ps(inv);
    for (size_t j = 0; j < bs; j += 32) {
      __m512 s0, s1;
      if constexpr (D == DType::kBF16) {
        // 32 bf16 in one load: the even elements (low halves) and the odd ones (high halves) as f32 lanes.
        const __m512i z = _mm512_loadu_si512(x + 2 * (lo + j));
        s0 = _mm512_castsi512_ps(_mm512_slli_epi32(z, 16));
        s1 = _mm512_castsi512_ps(_mm512_and_si512(z, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
      } else {
        s0 = _mm512_castsi512_ps(load16_f32_bits<D>(x, lo + j));
        s1 = _mm512_castsi512_ps(load16_f32_bits<D>(x, lo + j + 16));
      }
      // The lookup paths need no clamp: |s| exceeds 1 by at most an ulp (the lane holding absmax), which falls in
      // the same bucket as +-1 (past every bound, and in the first or last cell).
      s0 = _mm512_mul_ps(s0, vinv);
      s1 = _mm512_mul_ps(s1, vinv);
      if constexpr (kLut == 0) {
        s0 = _mm512_min_ps(_mm512_max_ps(s0, lo1), hi1);
        s1 = _mm512_min_ps(_mm512_max_ps(s1, lo1), hi1);
      }
      __m512i q0, q1;
      if constexpr (kLut == 1) {
        q0 = bucket_lut(s0, bounds, base_lo, base_hi);
        q1 = bucket_lut(s1, bounds, base_lo, base_hi);
      } else if constexpr (kLut == 2) {
        q0 = bucket_lut2(s0, bounds, base_lo, base_hi);
        q1 = bucket_lut2(s1, bounds, base_lo, base_hi);
      } else {
        q0 = bucket(s0, bounds);
        q1 = bucket(s1, bounds);
      }
      if (!identity) {
        q0 = _mm512_permutexvar_epi32(q0, order);
        q1 = _mm512_permutexvar_epi32(q1, order);
      }
      if constexpr (D == DType::kBF16) {
        // Byte k holds element 2k (even, high nibble) and 2k + 1 (odd).
        _mm_storeu_si128(reinterpret_cast<__m128i*>(packed + (lo + j) / 2), _mm512_cvtepi32_epi8(_mm512_or_si512(_mm512_slli_epi32(q0, 4), q1)));
      } else {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(packed + (lo + j) / 2), _mm_unpacklo_epi64(pack16(q0), pack16(q1)));
      }
    }
  }
  return bad;
}

size_t quant_avx512(const Bnb4Codebook& cb, const uint8_t* x, DType dtype, size_t first, size_t nblocks, size_t bs,
                    uint8_t* packed, float* absmax) {
  const int lut = cb.cell_lut ? 1 : cb.cell_lut2 ? 2 : 0;
  if (lut == 1) {
    if (dtype == DType::kF32) return quant_blocks<DType::kF32, 1>(cb, x, first, nblocks, bs, packed, absmax);
    if (dtype == DType::kBF16) return quant_blocks<DType::kBF16, 1>(cb, x, first, nblocks, bs, packed, absmax);
    return quant_blocks<DType::kF16, 1>(cb, x, first, nblocks, bs, packed, absmax);
  }
  if (lut == 2) {
    if (dtype == DType::kF32) return quant_blocks<DType::kF32, 2>(cb, x, first, nblocks, bs, packed, absmax);
    if (dtype == DType::kBF16) return quant_blocks<DType::kBF16, 2>(cb, x, first, nblocks, bs, packed, absmax);
    return quant_blocks<DType::kF16, 2>(cb, x, first, nblocks, bs, packed, absmax);
  }
  if (dtype == DType::kF32) return quant_blocks<DType::kF32, 0>(cb, x, first, nblocks, bs, packed, absmax);
  if (dtype == DType::kBF16) return quant_blocks<DType::kBF16, 0>(cb, x, first, nblocks, bs, packed, absmax);
  return quant_blocks<DType::kF16, 0>(cb, x, first, nblocks, bs, packed, absmax);
}

void dequant_avx512(const Bnb4Codebook& cb, const uint8_t* packed, const float* absmax, size_t first, size_t nblocks,
                    size_t bs, float* out) {
  const __m512 table = _mm512_loadu_ps(cb.table);
  const __m256i low = _mm256_set1_epi16(0x0f);
  for (size_t b = first; b < first + nblocks; ++b) {
    const __m512 scale = _mm512_set1_ps(absmax[b]);
    for (size_t i = b * bs, end = i + bs; i < end; i += 32) {
      // 16 bytes -> 32 codes in element order: each 16-bit lane holds (high nibble, low nibble) as two bytes.
      const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + i / 2)));
      const __m256i codes = _mm256_or_si256(_mm256_srli_epi16(w, 4), _mm256_slli_epi16(_mm256_and_si256(w, low), 8));
      const __m512i q0 = _mm512_cvtepu8_epi32(_mm256_castsi256_si128(codes));
      const __m512i q1 = _mm512_cvtepu8_epi32(_mm256_extracti128_si256(codes, 1));
      _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_permutexvar_ps(q0, table), scale));
      _mm512_storeu_ps(out + i + 16, _mm512_mul_ps(_mm512_permutexvar_ps(q1, table), scale));
    }
  }
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

Bnb4QuantFn bnb4_quant_avx512_fn() { return quant_avx512; }
Bnb4DequantFn bnb4_dequant_avx512_fn() { return dequant_avx512; }

}  // namespace ws
