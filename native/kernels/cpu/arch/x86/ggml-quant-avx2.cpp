// SPDX-License-Identifier: MIT
// AVX2 quantizers for q8_0 and q4_0, byte-identical to the references in kernels/ref/ggml-quant-ref.cpp:
// the same f32 products and sums lane by lane (no FMA), the same max search (max is exact, and the first
// element reaching it is located afterwards), roundf emulated exactly as trunc plus a half-away correction.
// The target is switched on per function after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../ggml-kernels.h"
#include "weightsmith/ggml-quants.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace ws {

namespace {

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline void store_half(uint8_t* p, float v) {
  const uint16_t h = ggml_fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Packs four vectors of 8 int32 codes (each in [-128, 255] as needed) into 32 bytes, in element order.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d, bool is_signed) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = is_signed ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void q8_0_avx2(const float* x, uint8_t* out, size_t nblocks) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (size_t bi = 0; bi < nblocks; ++bi, x += 32, out += 34) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[k]));
    }
    const float d = hmax(amax) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(out, d);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 s = _mm256_mul_ps(v[k], vid);
      const __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign_mask, _mm256_sub_ps(s, t));  // exact
      const __m256 away = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), _mm256_or_ps(one, _mm256_and_ps(s, sign_mask)));
      q[k] = _mm256_cvttps_epi32(_mm256_add_ps(t, away));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2), pack32(q[0], q[1], q[2], q[3], true));
  }
}

void q4_0_avx2(const float* x, uint8_t* out, size_t nblocks) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 c85 = _mm256_set1_ps(8.5f);
  const __m256i c15 = _mm256_set1_epi32(15);
  for (size_t bi = 0; bi < nblocks; ++bi, x += 32, out += 18) {
    __m256 v[4];
    __m256 a[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      a[k] = _mm256_andnot_ps(sign_mask, v[k]);
      amax = _mm256_max_ps(amax, a[k]);
    }
    // The signed value of the first element whose |x| is the maximum (0 when all are zero).
    const float m = hmax(amax);
    float max = 0.0f;
    if (m > 0.0f) {
      const __m256 vm = _mm256_set1_ps(m);
      for (int k = 0; k < 4; ++k) {
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(a[k], vm, _CMP_EQ_OQ));
        if (mask != 0) {
          max = x[8 * k + __builtin_ctz(static_cast<unsigned>(mask))];
          break;
        }
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(out, d);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 s = _mm256_add_ps(_mm256_mul_ps(v[k], vid), c85);  // two roundings, as the reference
      q[k] = _mm256_min_epi32(_mm256_cvttps_epi32(s), c15);
    }
    // bytes 0..15: codes 0..15 | codes 16..31 << 4
    alignas(32) uint8_t codes[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes), pack32(q[0], q[1], q[2], q[3], false));
    const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(codes));
    const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(codes + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
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

GgmlQuantFn ggml_quant_avx2_fn(uint32_t type) {
  switch (type) {
    case 2: return q4_0_avx2;
    case 8: return q8_0_avx2;
    default: return nullptr;
  }
}

}  // namespace ws
