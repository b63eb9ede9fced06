// SPDX-License-Identifier: MIT
// AVX-512 quantizers for q8_0, q4_0, q4_1, q5_0 and q5_1, byte-identical to kernels/ref/ggml-quant-ref.cpp: 16
// blocks at a time, so that the scales of the blocks (d and 1 / d, d and the min as fp16 by vcvtps2ph's round to
// nearest even, which is ggml's conversion for finite values) are computed for the 16 together instead of in a
// serial scalar chain; per block the same f32 products and sums as the reference, lane by lane (no FMA), its
// truncating conversions, and q8_0's roundf (truncation plus a correction where the exact remainder is >= 0.5);
// codes narrowed by vpmovdb, q5's fifth bits by a test mask. Blocks holding a NaN or an infinity go through the
// reference. The target is switched on
// per function after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../ggml-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace ws {

namespace {

constexpr size_t kGroup = 16;  // blocks per iteration

// The index (from x) of the first non-finite value of the first block flagged in `bad`, or SIZE_MAX.
size_t first_bad(const float* x, uint32_t bad) {
  if (!bad) return SIZE_MAX;
  const size_t b = static_cast<size_t>(__builtin_ctz(bad));
  for (size_t j = 0; j < 32; ++j) {
    uint32_t u;
    std::memcpy(&u, x + 32 * b + j, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return 32 * b + j;
  }
  return SIZE_MAX;
}

// n whole q8_0 blocks (n <= kGroup) with their scales computed together.
size_t q8_0_group(const float* x, uint8_t* out, size_t n) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512i expo = _mm512_set1_epi32(0x7f800000);
  alignas(64) float amax[kGroup] = {};
  __mmask16 bad = 0;
  for (size_t b = 0; b < n; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
    const __mmask16 nf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v0), expo), expo) |
                         _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v1), expo), expo);
    bad |= static_cast<__mmask16>(nf ? (1u << b) : 0u);
    amax[b] = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  }
  const __m512 va = _mm512_load_ps(amax);
  const __m512 d = _mm512_div_ps(va, _mm512_set1_ps(127.0f));
  const __mmask16 nz = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ);
  alignas(64) float id[kGroup];
  _mm512_store_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), d));
  alignas(32) uint16_t dh[kGroup];
  _mm256_store_si256(reinterpret_cast<__m256i*>(dh), _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
  for (size_t b = 0; b < n; ++b) {
    uint8_t* o = out + 34 * b;
    if ((bad >> b) & 1u) {
      ggml_quant_ref_fn(8)(x + 32 * b, o, 1);
      continue;
    }
    std::memcpy(o, &dh[b], 2);
    const __m512 vid = _mm512_set1_ps(id[b]);
    __m128i q[2];
    for (int k = 0; k < 2; ++k) {
      const __m512 s = _mm512_mul_ps(_mm512_loadu_ps(x + 32 * b + 16 * k), vid);
      const __m512 t = _mm512_roundscale_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(s, t));  // exact
      const __mmask16 away = _mm512_cmp_ps_mask(frac, half, _CMP_GE_OQ);
      const __m512 step = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(one), _mm512_and_si512(_mm512_castps_si512(s), _mm512_castps_si512(sign))));  // +-1, the sign of s
      q[k] = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(_mm512_mask_add_ps(t, away, t, step)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2), q[0]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 18), q[1]);
  }
  return first_bad(x, bad);
}

size_t q8_0_avx512_checked(const float* x, uint8_t* out, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b += kGroup) {
    const size_t n = nblocks - b < kGroup ? nblocks - b : kGroup;
    const size_t bad = q8_0_group(x + 32 * b, out + 34 * b, n);
    if (bad != SIZE_MAX) return 32 * b + bad;
  }
  return SIZE_MAX;
}

void q8_0_avx512(const float* x, uint8_t* out, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b += kGroup) {
    const size_t n = nblocks - b < kGroup ? nblocks - b : kGroup;
    q8_0_group(x + 32 * b, out + 34 * b, n);
  }
}

// q4_0 / q5_0 (kOne = false: d = signed max / -2^(bits-1), codes x * id + 2^(bits-1) + 0.5) and q4_1 / q5_1
// (kOne = true: d = (max - min) / (2^bits - 1), codes (x - min) * id + 0.5); truncated, capped at 2^bits - 1.
template <uint32_t kType, int kBits, bool kOne>
size_t legacy_group(const float* x, uint8_t* out, size_t n) {
  constexpr size_t kBytes = kType == 2 ? 18 : kType == 3 ? 20 : kType == 6 ? 22 : 24;
  const __m512i expo = _mm512_set1_epi32(0x7f800000);
  alignas(64) float mx[kGroup] = {}, mn[kGroup] = {};
  __mmask16 bad = 0;
  for (size_t b = 0; b < n; ++b) {
    const float* xb = x + 32 * b;
    const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
    const __mmask16 nf = _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v0), expo), expo) |
                         _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(v1), expo), expo);
    if (nf) {
      bad = static_cast<__mmask16>(bad | (1u << b));
      continue;
    }
    if constexpr (kOne) {
      mn[b] = _mm512_reduce_min_ps(_mm512_min_ps(v0, v1));
      mx[b] = _mm512_reduce_max_ps(_mm512_max_ps(v0, v1));
    } else {
      // The value of largest magnitude, the first one on ties (the reference's strict < scan).
      const __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
      const __m512 va = _mm512_set1_ps(amax);
      const uint32_t m = static_cast<uint32_t>(_mm512_cmp_ps_mask(a0, va, _CMP_EQ_OQ)) |
                         static_cast<uint32_t>(_mm512_cmp_ps_mask(a1, va, _CMP_EQ_OQ)) << 16;
      mx[b] = amax == 0.0f ? 0.0f : xb[__builtin_ctz(m)];
    }
  }
  const __m512 vmx = _mm512_load_ps(mx), vmn = _mm512_load_ps(mn);
  constexpr float kLevels = static_cast<float>((1 << kBits) - 1);
  const __m512 d = kOne ? _mm512_div_ps(_mm512_sub_ps(vmx, vmn), _mm512_set1_ps(kLevels))
                        : _mm512_div_ps(vmx, _mm512_set1_ps(-static_cast<float>(1 << (kBits - 1))));
  const __mmask16 nz = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ);
  alignas(64) float id[kGroup];
  _mm512_store_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), d));
  alignas(32) uint16_t dh[kGroup], mh[kGroup];
  _mm256_store_si256(reinterpret_cast<__m256i*>(dh), _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  _mm256_store_si256(reinterpret_cast<__m256i*>(mh), _mm512_cvtps_ph(vmn, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m512 add = _mm512_set1_ps(kOne ? 0.5f : static_cast<float>(1 << (kBits - 1)) + 0.5f);
  const __m512i cap = _mm512_set1_epi32((1 << kBits) - 1), low = _mm512_set1_epi32(15), bit4 = _mm512_set1_epi32(16);
  for (size_t b = 0; b < n; ++b) {
    uint8_t* o = out + kBytes * b;
    if ((bad >> b) & 1u) {
      ggml_quant_ref_fn(kType)(x + 32 * b, o, 1);
      continue;
    }
    std::memcpy(o, &dh[b], 2);
    if constexpr (kOne) std::memcpy(o + 2, &mh[b], 2);
    const __m512 vid = _mm512_set1_ps(id[b]);
    __m512i q[2];
    for (int k = 0; k < 2; ++k) {
      __m512 v = _mm512_loadu_ps(x + 32 * b + 16 * k);
      if constexpr (kOne) v = _mm512_sub_ps(v, _mm512_set1_ps(mn[b]));
      q[k] = _mm512_min_epi32(_mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(v, vid), add)), cap);  // two roundings
    }
    const __m512i packed = _mm512_or_si512(_mm512_and_si512(q[0], low), _mm512_slli_epi32(_mm512_and_si512(q[1], low), 4));
    if constexpr (kBits == 4) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (kOne ? 4 : 2)), _mm512_cvtepi32_epi8(packed));
    } else {
      const uint32_t qh = static_cast<uint32_t>(_mm512_test_epi32_mask(q[0], bit4)) |
                          static_cast<uint32_t>(_mm512_test_epi32_mask(q[1], bit4)) << 16;
      std::memcpy(o + (kOne ? 4 : 2), &qh, 4);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (kOne ? 8 : 6)), _mm512_cvtepi32_epi8(packed));
    }
  }
  return first_bad(x, bad);
}

template <uint32_t kType, int kBits, bool kOne>
void legacy_avx512(const float* x, uint8_t* out, size_t nblocks) {
  constexpr size_t kBytes = kType == 2 ? 18 : kType == 3 ? 20 : kType == 6 ? 22 : 24;
  for (size_t b = 0; b < nblocks; b += kGroup) {
    const size_t n = nblocks - b < kGroup ? nblocks - b : kGroup;
    legacy_group<kType, kBits, kOne>(x + 32 * b, out + kBytes * b, n);
  }
}

// The same, returning the index of the first non-finite value at the first group that holds one (the blocks
// after it are not quantized: the caller reports the error), or SIZE_MAX.
template <uint32_t kType, int kBits, bool kOne>
size_t legacy_avx512_checked(const float* x, uint8_t* out, size_t nblocks) {
  constexpr size_t kBytes = kType == 2 ? 18 : kType == 3 ? 20 : kType == 6 ? 22 : 24;
  for (size_t b = 0; b < nblocks; b += kGroup) {
    const size_t n = nblocks - b < kGroup ? nblocks - b : kGroup;
    const size_t bad = legacy_group<kType, kBits, kOne>(x + 32 * b, out + kBytes * b, n);
    if (bad != SIZE_MAX) return 32 * b + bad;
  }
  return SIZE_MAX;
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

GgmlQuantFn ggml_quant_avx512_fn(uint32_t type) {
  switch (type) {
    case 2: return legacy_avx512<2, 4, false>;  // q4_0
    case 3: return legacy_avx512<3, 4, true>;   // q4_1
    case 6: return legacy_avx512<6, 5, false>;  // q5_0
    case 7: return legacy_avx512<7, 5, true>;   // q5_1
    case 8: return q8_0_avx512;
    default: return nullptr;
  }
}

GgmlQuantCheckedFn ggml_quant_avx512_checked_fn(uint32_t type) {
  switch (type) {
    case 2: return legacy_avx512_checked<2, 4, false>;
    case 3: return legacy_avx512_checked<3, 4, true>;
    case 6: return legacy_avx512_checked<6, 5, false>;
    case 7: return legacy_avx512_checked<7, 5, true>;
    case 8: return q8_0_avx512_checked;
    default: return nullptr;
  }
}

}  // namespace ws
