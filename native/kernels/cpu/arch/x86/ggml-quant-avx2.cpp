// SPDX-License-Identifier: MIT
// AVX2 quantizers for q8_0, q4_0, q4_1, q5_0 and q5_1, byte-identical to the references in kernels/ref/ggml-quant-ref.cpp:
// the same f32 products and sums lane by lane (no FMA), the same max search (max is exact, and the first
// element reaching it is located afterwards), roundf emulated exactly as trunc plus a half-away correction.
// The target is switched on per function after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cfloat>
#include <cmath>
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

// Horizontal min.
inline float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// The signed value of the first element of the block whose |x| is the largest (0 when all are zero): the
// larger of max and -min, and a scan for the first one only when both have the same magnitude.
inline float first_signed_absmax(const float* x, const __m256* v) {
  __m256 vmax = v[0], vmin = v[0];
  for (int k = 1; k < 4; ++k) {
    vmax = _mm256_max_ps(vmax, v[k]);
    vmin = _mm256_min_ps(vmin, v[k]);
  }
  const float mx = hmax(vmax), mn = hmin(vmin);
  if (mx > -mn) return mx;  // then mx > 0
  if (-mn > mx) return mn;
  if (!(mx > 0.0f)) return 0.0f;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) == mx) return x[j];
  return 0.0f;
}

// Packs 32 codes of 5 bits (as int32 lanes) into the q5 layout: low nibbles like q4 (element j | element
// j+16 << 4) and bit 4 of element e into bit e of a u32.
inline void store_q5(uint8_t* qh_out, uint8_t* qs_out, const __m256i* q) {
  alignas(32) uint8_t codes[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(codes), pack32(q[0], q[1], q[2], q[3], false));
  const __m256i all = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes));
  const uint32_t qh = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(all, 3)));  // bit 4 -> bit 7
  std::memcpy(qh_out, &qh, 4);
  const __m128i nib = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(codes)), nib);
  const __m128i hi = _mm_and_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(codes + 16)), nib);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(qs_out), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
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
  const __m256 c85 = _mm256_set1_ps(8.5f);
  const __m256i c15 = _mm256_set1_epi32(15);
  for (size_t bi = 0; bi < nblocks; ++bi, x += 32, out += 18) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
    const float max = first_signed_absmax(x, v);
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

// q4_1 / q5_1: d = (max - min) / nmax, codes trunc((x - min) * id + 0.5), capped at 15 for q4_1.
template <int kNmax>
void qx_1_avx2(const float* x, uint8_t* out, size_t nblocks) {
  constexpr size_t kBytes = kNmax == 15 ? 20 : 24;
  const __m256 c05 = _mm256_set1_ps(0.5f);
  for (size_t bi = 0; bi < nblocks; ++bi, x += 32, out += kBytes) {
    __m256 v[4];
    __m256 vmin = _mm256_set1_ps(FLT_MAX), vmax = _mm256_set1_ps(-FLT_MAX);
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      vmin = _mm256_min_ps(vmin, v[k]);
      vmax = _mm256_max_ps(vmax, v[k]);
    }
    const float min = hmin(vmin), max = hmax(vmax);
    const float d = (max - min) / kNmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(out, d);
    store_half(out + 2, min);
    const __m256 vid = _mm256_set1_ps(id), vmn = _mm256_set1_ps(min);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 s = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v[k], vmn), vid), c05);
      q[k] = _mm256_cvttps_epi32(s);
      if (kNmax == 15) q[k] = _mm256_min_epi32(q[k], _mm256_set1_epi32(15));
    }
    if (kNmax == 15) {
      alignas(32) uint8_t codes[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes), pack32(q[0], q[1], q[2], q[3], false));
      const __m128i lo = _mm_load_si128(reinterpret_cast<const __m128i*>(codes));
      const __m128i hi = _mm_load_si128(reinterpret_cast<const __m128i*>(codes + 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
    } else {
      // q5_1 codes are uint8 casts of values up to ~31.5: keep the low 8 bits as the reference's cast does.
      for (int k = 0; k < 4; ++k) q[k] = _mm256_and_si256(q[k], _mm256_set1_epi32(0xFF));
      store_q5(out + 4, out + 8, q);
    }
  }
}

void q5_0_avx2(const float* x, uint8_t* out, size_t nblocks) {
  const __m256 c165 = _mm256_set1_ps(16.5f);
  const __m256i c31 = _mm256_set1_epi32(31);
  for (size_t bi = 0; bi < nblocks; ++bi, x += 32, out += 22) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
    const float max = first_signed_absmax(x, v);
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    store_half(out, d);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
      q[k] = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(v[k], vid), c165)), c31);
    store_q5(out + 2, out + 6, q);
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
    case 3: return qx_1_avx2<15>;
    case 6: return q5_0_avx2;
    case 7: return qx_1_avx2<31>;
    case 8: return q8_0_avx2;
    default: return nullptr;
  }
}

}  // namespace ws
