// SPDX-License-Identifier: MIT
// AVX2 + F16C per-segment kernels of the int and FP8 quantizers: 8 lanes. Chosen only when simd_level()
// allows AVX2; the target is switched on per function after the includes (see convert-avx2.cpp for why).
// Bit-identical to the scalar references.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../../../scale-quant-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace ws {

namespace {

struct V256 {
  using F = __m256;
  using I = __m256i;
  using M = __m256i;  // all-ones lanes
  static constexpr size_t N = 8;

  template <DType D>
  static F load(const uint8_t* p) {
    if constexpr (D == DType::kF32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    } else if constexpr (D == DType::kBF16) {
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
    } else {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
  }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static I set1i(int v) { return _mm256_set1_epi32(v); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F abs(F a) { return _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(0x7fffffff))); }
  static I abs_bits(F a) { return _mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(0x7fffffff)); }
  static I bits(F a) { return _mm256_castps_si256(a); }
  static M unord(F v) { return _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)); }
  static F round_bf16_nonan(F v) {
    const __m256i x = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
    return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  // NaN -> (x & 0xffff0000) | 0x00400000, as f32_to_bf16 then bf16_to_f32.
  static F round_bf16(F v) {
    const __m256i x = _mm256_castps_si256(v);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
    const __m256i r = _mm256_castps_si256(round_bf16_nonan(v));
    const __m256i n = _mm256_or_si256(_mm256_and_si256(x, _mm256_set1_epi32(static_cast<int>(0xffff0000u))), _mm256_set1_epi32(0x00400000));
    return _mm256_castsi256_ps(_mm256_blendv_epi8(r, n, nan));
  }
  static F round_f16(F v) { return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
  // Round to an integral value with an explicit mode (MXCSR ignored), then an exact truncating conversion.
  static I cvt_rne(F v) { return _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
  static I addi(I a, I b) { return _mm256_add_epi32(a, b); }
  static I maxu(I a, I b) { return _mm256_max_epu32(a, b); }
  static I select(M m, I a, I b) { return _mm256_blendv_epi8(b, a, m); }
  static float hmin(F v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }
  static float hmax(F v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }
  static uint32_t hmaxu(I v) {
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
    return static_cast<uint32_t>(_mm_cvtsi128_si32(m));
  }
  // Codes are <= 255: two saturating packs, then undo the per-128-bit-lane interleave.
  static void store4_u8(uint8_t* d, I a, I b, I c, I e) {
    const __m256i w = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, e));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }

  // f32 bits -> saturating fp8 code per lane (float-bits.h's f32_to_fp8_sat; convert-avx2.cpp's twin).
  template <bool E4M3>
  static I fp8(I x) {
    constexpr int EBITS = E4M3 ? 4 : 5, MBITS = E4M3 ? 3 : 2, BIAS = E4M3 ? 7 : 15;
    constexpr bool HAS_INF = !E4M3;
    constexpr int kExpAll = (1 << EBITS) - 1;
    constexpr int kMaxFinite = HAS_INF ? (((kExpAll - 1) << MBITS) | ((1 << MBITS) - 1)) : ((kExpAll << MBITS) | ((1 << MBITS) - 2));
    constexpr int kShift = 23 - MBITS;
    const __m256i ax = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(x, 24), _mm256_set1_epi32(0x80));
    const __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(ax, 23), _mm256_set1_epi32(127));
    __m256i r = _mm256_sub_epi32(ax, _mm256_set1_epi32((127 - BIAS) << 23));
    r = _mm256_add_epi32(r, _mm256_add_epi32(_mm256_set1_epi32((1 << (kShift - 1)) - 1),
                                             _mm256_and_si256(_mm256_srli_epi32(r, kShift), _mm256_set1_epi32(1))));
    const __m256i code_n = _mm256_min_epu32(_mm256_srli_epi32(r, kShift), _mm256_set1_epi32(kMaxFinite));
    const __m256i shift = _mm256_sub_epi32(_mm256_set1_epi32(23 + (1 - BIAS - MBITS)), e);
    const __m256i mant = _mm256_or_si256(_mm256_and_si256(ax, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x800000));
    __m256i q = _mm256_srlv_epi32(mant, shift);
    const __m256i one = _mm256_set1_epi32(1);
    const __m256i rem = _mm256_and_si256(mant, _mm256_sub_epi32(_mm256_sllv_epi32(one, shift), one));
    const __m256i half = _mm256_sllv_epi32(one, _mm256_sub_epi32(shift, one));
    const __m256i up = _mm256_or_si256(_mm256_cmpgt_epi32(rem, half),
                                       _mm256_and_si256(_mm256_cmpeq_epi32(rem, half), _mm256_cmpeq_epi32(_mm256_and_si256(q, one), one)));
    q = _mm256_sub_epi32(q, up);
    const __m256i tiny = _mm256_or_si256(_mm256_cmpgt_epi32(shift, _mm256_set1_epi32(24)),
                                         _mm256_cmpeq_epi32(_mm256_srli_epi32(ax, 23), _mm256_setzero_si256()));
    q = _mm256_andnot_si256(tiny, q);
    const __m256i is_sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(1 - BIAS), e);
    __m256i code = _mm256_blendv_epi8(code_n, q, is_sub);
    const __m256i is_nan = _mm256_cmpgt_epi32(ax, _mm256_set1_epi32(0x7f800000));
    __m256i nan_code;
    if constexpr (HAS_INF) {
      nan_code = _mm256_or_si256(_mm256_set1_epi32((kExpAll << MBITS) | (1 << (MBITS - 1))),
                                 _mm256_and_si256(_mm256_srli_epi32(ax, kShift), _mm256_set1_epi32((1 << MBITS) - 1)));
    } else {
      nan_code = _mm256_set1_epi32((kExpAll << MBITS) | ((1 << MBITS) - 1));
    }
    code = _mm256_blendv_epi8(code, nan_code, is_nan);
    return _mm256_or_si256(code, sign);
  }
};

#include "scale-quant-simd.h"

template <DType D>
ScaleQuantKernels kernels_for() {
  return ScaleQuantKernels{minmax_simd<V256, D>, absmax_simd<V256, D>, int_codes_simd<V256, D>, fp8_codes_simd<V256, D>, nullptr, 0, nullptr, nullptr, false, nullptr, nullptr};
}

}  // namespace

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace ws {

const ScaleQuantKernels* scale_quant_avx2(DType weight) {
  if (simd_supported() < SimdLevel::kAvx2) return nullptr;
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
