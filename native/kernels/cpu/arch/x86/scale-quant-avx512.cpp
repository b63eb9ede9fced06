// SPDX-License-Identifier: MIT
// AVX-512 (F + BW) per-segment kernels of the int and FP8 quantizers: 16 lanes, mask registers for the NaN
// lanes, vpmovdb stores. Chosen only when simd_level() allows AVX-512; the target is switched on per function
// after the includes (see convert-avx2.cpp for why). Bit-identical to the scalar references.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../scale-quant-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsic headers trip a false -Wmaybe-uninitialized / -Wuninitialized (GCC bug 105593,
// fixed in 13; the _mm512_reduce_* helpers hit the second).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace ws {

namespace {

struct V512 {
  using F = __m512;
  using I = __m512i;
  using M = __mmask16;
  static constexpr size_t N = 16;

  template <DType D>
  static F load(const uint8_t* p) {
    if constexpr (D == DType::kF32) {
      return _mm512_loadu_ps(p);
    } else if constexpr (D == DType::kBF16) {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
    } else {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    }
  }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static I set1i(int v) { return _mm512_set1_epi32(v); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F abs(F a) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff))); }
  static I abs_bits(F a) { return _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)); }
  static I bits(F a) { return _mm512_castps_si512(a); }
  static M unord(F v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q); }
  static F round_bf16_nonan(F v) {
    const __m512i x = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  // NaN -> (x & 0xffff0000) | 0x00400000, as f32_to_bf16 then bf16_to_f32.
  static F round_bf16(F v) {
    const __m512i x = _mm512_castps_si512(v);
    const M nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    __m512i r = _mm512_castps_si512(round_bf16_nonan(v));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_and_si512(x, _mm512_set1_epi32(static_cast<int>(0xffff0000u))),
                                                       _mm512_set1_epi32(0x00400000)));
    return _mm512_castsi512_ps(r);
  }
  static F round_f16(F v) { return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
  static I cvt_rne(F v) { return _mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static I addi(I a, I b) { return _mm512_add_epi32(a, b); }
  static I maxu(I a, I b) { return _mm512_max_epu32(a, b); }
  static I select(M m, I a, I b) { return _mm512_mask_blend_epi32(m, b, a); }
  static float hmin(F v) { return _mm512_reduce_min_ps(v); }
  static float hmax(F v) { return _mm512_reduce_max_ps(v); }
  static uint32_t hmaxu(I v) { return _mm512_reduce_max_epu32(v); }
  static void store4_u8(uint8_t* d, I a, I b, I c, I e) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm512_cvtepi32_epi8(a));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 16), _mm512_cvtepi32_epi8(b));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 32), _mm512_cvtepi32_epi8(c));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 48), _mm512_cvtepi32_epi8(e));
  }

  // f32 bits -> saturating fp8 code per lane (float-bits.h's f32_to_fp8_sat; convert-avx512.cpp's twin).
  template <bool E4M3>
  static I fp8(I x) {
    constexpr int EBITS = E4M3 ? 4 : 5, MBITS = E4M3 ? 3 : 2, BIAS = E4M3 ? 7 : 15;
    constexpr bool HAS_INF = !E4M3;
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
    return _mm512_or_si512(code, sign);
  }
};

#include "scale-quant-simd.h"

template <DType D>
ScaleQuantKernels kernels_for() {
  return ScaleQuantKernels{minmax_simd<V512, D>, absmax_simd<V512, D>, int_codes_simd<V512, D>, fp8_codes_simd<V512, D>};
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

const ScaleQuantKernels* scale_quant_avx512(DType weight) {
  if (simd_supported() < SimdLevel::kAvx512) return nullptr;
  static const ScaleQuantKernels f32 = kernels_for<DType::kF32>();
  static const ScaleQuantKernels f16 = kernels_for<DType::kF16>();
  static const ScaleQuantKernels bf16 = kernels_for<DType::kBF16>();
  switch (weight) {
    case DType::kF32: return &f32;
    case DType::kF16: return &f16;
    case DType::kBF16: return &bf16;
    default: return nullptr;
  }
}

}  // namespace ws
