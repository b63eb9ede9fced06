// SPDX-License-Identifier: MIT
// AVX-512 quantizer for q8_0, byte-identical to kernels/ref/ggml-quant-ref.cpp: 16 blocks at a time, so that the
// scale of every block (d = amax / 127, id = 1 / d, d as fp16 by vcvtps2ph's round to nearest even, which is
// ggml's conversion for finite values) is computed for the 16 together instead of in a serial scalar chain; the
// codes are roundf(x * id) (half away from zero: truncation plus a correction where the exact remainder is >= 0.5)
// narrowed by vpmovdb. Groups holding a NaN or an infinity go through the reference. The target is switched on
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
#endif

namespace ws {

namespace {

constexpr size_t kGroup = 16;  // blocks per iteration

// n whole q8_0 blocks (n <= kGroup) with their scales computed together.
void q8_0_group(const float* x, uint8_t* out, size_t n) {
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
}

void q8_0_avx512(const float* x, uint8_t* out, size_t nblocks) {
  for (size_t b = 0; b < nblocks; b += kGroup) {
    const size_t n = nblocks - b < kGroup ? nblocks - b : kGroup;
    q8_0_group(x + 32 * b, out + 34 * b, n);
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

GgmlQuantFn ggml_quant_avx512_fn(uint32_t type) { return type == 8 ? q8_0_avx512 : nullptr; }

}  // namespace ws
