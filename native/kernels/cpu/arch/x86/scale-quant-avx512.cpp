// SPDX-License-Identifier: MIT
// AVX-512 (F + BW) per-segment kernels of the int and FP8 quantizers: 16 lanes, mask registers for the NaN
// lanes, vpmovdb stores. Chosen only when simd_level() allows AVX-512; the target is switched on per function
// after the includes (see convert-avx2.cpp for why). Bit-identical to the scalar references.
#include <immintrin.h>

#include <cmath>

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

inline float f32_from_bits_avx(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

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

// ---- bf16 specializations: a 64-byte load holds 32 weights; element 2j sits in the low half of 32-bit lane j
// and element 2j+1 in the high half, so the even elements widen with one shift and the odd ones with one AND.
// Reductions do not care about the order; the code kernels put even and odd codes back together when packing.

inline __m512 bf16_even(__m512i z) { return _mm512_castsi512_ps(_mm512_slli_epi32(z, 16)); }
inline __m512 bf16_odd(__m512i z) { return _mm512_castsi512_ps(_mm512_and_si512(z, _mm512_set1_epi32(static_cast<int>(0xffff0000u)))); }

// The code passes read their group from cache; meanwhile they pull the weights kAhead bytes further (the next
// groups, whose min/max pass would otherwise wait on memory with nothing else to do) into L2.
constexpr size_t kAhead = 16384;
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kAhead + o), _MM_HINT_T1);
}

void minmax_bf16(const uint8_t* x, size_t n, float* mn_io, float* mx_io, uint32_t* abits_io) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 mn0 = zero, mn1 = zero, mx0 = zero, mx1 = zero;
  __m512i ab = _mm512_setzero_si512();
  const __m512i abs16 = _mm512_set1_epi32(0x7fff7fff);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i z = _mm512_loadu_si512(x + 2 * i);
    const __m512 e = bf16_even(z), o = bf16_odd(z);
    mn0 = _mm512_min_ps(e, mn0);  // NaN e keeps the accumulator
    mn1 = _mm512_min_ps(o, mn1);
    mx0 = _mm512_max_ps(e, mx0);
    mx1 = _mm512_max_ps(o, mx1);
    ab = _mm512_max_epu16(ab, _mm512_and_si512(z, abs16));
  }
  float lo = _mm512_reduce_min_ps(_mm512_min_ps(mn0, mn1));
  float hi = _mm512_reduce_max_ps(_mm512_max_ps(mx0, mx1));
  ab = _mm512_max_epu16(ab, _mm512_srli_epi32(ab, 16));
  uint32_t b = _mm512_reduce_max_epu32(_mm512_and_si512(ab, _mm512_set1_epi32(0xffff))) << 16;
  if (i < n) minmax_simd<V512, DType::kBF16>(x + 2 * i, n - i, &lo, &hi, &b);  // lo, hi start at 0 anyway
  *mn_io = lo < *mn_io ? lo : *mn_io;
  *mx_io = hi > *mx_io ? hi : *mx_io;
  *abits_io = b > *abits_io ? b : *abits_io;
}

void absmax_bf16(const uint8_t* x, size_t n, float* am_io, uint32_t* abits_io) {
  // |x| of a bf16 is its bit pattern & 0x7fff, and for non-NaN patterns the integer order is the value order:
  // the largest pattern below 0x7f81 is the absmax (a NaN never wins), the largest overall flags non-finite.
  const __m512i abs16 = _mm512_set1_epi32(0x7fff7fff);
  const __m512i nan16 = _mm512_set1_epi16(0x7f80);
  __m512i ab = _mm512_setzero_si512(), am = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i a = _mm512_and_si512(_mm512_loadu_si512(x + 2 * i), abs16);
    ab = _mm512_max_epu16(ab, a);
    am = _mm512_mask_max_epu16(am, _mm512_cmple_epu16_mask(a, nan16), am, a);
  }
  ab = _mm512_max_epu16(ab, _mm512_srli_epi32(ab, 16));
  am = _mm512_max_epu16(am, _mm512_srli_epi32(am, 16));
  uint32_t b = _mm512_reduce_max_epu32(_mm512_and_si512(ab, _mm512_set1_epi32(0xffff))) << 16;
  float m = f32_from_bits_avx(_mm512_reduce_max_epu32(_mm512_and_si512(am, _mm512_set1_epi32(0xffff))) << 16);
  if (i < n) absmax_simd<V512, DType::kBF16>(x + 2 * i, n - i, &m, &b);
  *am_io = m > *am_io ? m : *am_io;
  *abits_io = b > *abits_io ? b : *abits_io;
}

// x / scale for 16 lanes. With f16/bf16 weights the quotient is rounded to that dtype next, so x * (1 / scale)
// serves (a multiply instead of a division) wherever it cannot round differently: the exact quotient of two
// 8-bit (11-bit) values is either a midpoint of the narrow type or at least 2^-17 (2^-23) of itself away from
// every midpoint, and x * fl(1 / scale) is within 2 f32 ulps of it; so lanes whose product lies within 8 ulps
// of a midpoint (and, for f16, nonzero values below its normal range, whose midpoints sit elsewhere) are divided
// exactly. f32 weights always divide.
struct Div16 {
  __m512 sc, rc;
  bool fast;
};

template <DType D>
inline Div16 make_div(float scale) {
  const float r = 1.0f / scale;
  return {_mm512_set1_ps(scale), _mm512_set1_ps(r), D != DType::kF32 && std::isnormal(r)};
}

template <DType D>
inline __m512 div_w(__m512 x, const Div16& d) {
  if constexpr (D == DType::kF32) {
    return _mm512_div_ps(x, d.sc);
  } else {
    if (!d.fast) return _mm512_div_ps(x, d.sc);
    __m512 y = _mm512_mul_ps(x, d.rc);
    const __m512i b = _mm512_castps_si512(y);
    constexpr int kMask = D == DType::kBF16 ? 0xffff : 0x1fff, kHalf = D == DType::kBF16 ? 0x8000 : 0x1000;
    __mmask16 near = _mm512_cmple_epu32_mask(_mm512_sub_epi32(_mm512_and_si512(b, _mm512_set1_epi32(kMask)), _mm512_set1_epi32(kHalf - 8)),
                                             _mm512_set1_epi32(16));
    if constexpr (D == DType::kF16) {
      const __m512i a = _mm512_and_si512(b, _mm512_set1_epi32(0x7fffffff));  // 0 < |y| < 2^-14
      near = static_cast<__mmask16>(near | _mm512_cmplt_epu32_mask(_mm512_sub_epi32(a, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x38800000 - 1)));
    }
    if (near) y = _mm512_mask_div_ps(y, near, x, d.sc);
    return y;
  }
}

// One vector of int codes (offset added), the reference's steps per lane.
template <DType D, bool ASYM, bool NANS>
inline __m512i quant16(__m512 xv, const Div16& sc, __m512 zp, __m512 lo, __m512 hi, __m512i off) {
  __m512 v = div_w<D>(xv, sc);
  __mmask16 nan = 0;
  if constexpr (NANS) nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  v = round_w_nonan<V512, D>(v);
  if constexpr (ASYM) v = round_w_nonan<V512, D>(_mm512_add_ps(v, zp));
  v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  __m512i q = _mm512_add_epi32(V512::cvt_rne(v), off);
  if constexpr (NANS) q = _mm512_mask_mov_epi32(q, nan, off);  // NaN -> code 0
  return q;
}

// 8-bit codes without NaN / Inf lanes: the clamp to [-128, 127] is the signed saturation of vpmovsdb, and the
// offset 128 an XOR of the byte's top bit.
template <DType D, bool ASYM>
inline __m128i quant16_i8(__m512 xv, const Div16& sc, __m512 zp) {
  __m512 v = round_w_nonan<V512, D>(div_w<D>(xv, sc));
  if constexpr (ASYM) v = round_w_nonan<V512, D>(_mm512_add_ps(v, zp));
  return _mm_xor_si128(_mm512_cvtsepi32_epi8(V512::cvt_rne(v)), _mm_set1_epi8(static_cast<char>(0x80)));
}

template <DType D, bool ASYM, bool NANS, int BITS>
void int_pack_t(const uint8_t* x, size_t n, const IntSegParams& p, uint8_t* dst) {
  if constexpr (BITS == 8 && !NANS) {
    const Div16 sc = make_div<D>(p.sc);
    const __m512 zp = _mm512_set1_ps(p.zp);
    constexpr size_t es = D == DType::kF32 ? 4 : 2;
    for (size_t i = 0; i + 32 <= n; i += 32) {
      prefetch_ahead(x + i * es, 32 * es);
      if constexpr (D == DType::kBF16) {
        const __m512i z = _mm512_loadu_si512(x + 2 * i);
        const __m128i ce = quant16_i8<D, ASYM>(bf16_even(z), sc, zp), co = quant16_i8<D, ASYM>(bf16_odd(z), sc, zp);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_unpacklo_epi8(ce, co));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 16), _mm_unpackhi_epi8(ce, co));
      } else {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), quant16_i8<D, ASYM>(V512::load<D>(x + i * es), sc, zp));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 16), quant16_i8<D, ASYM>(V512::load<D>(x + (i + 16) * es), sc, zp));
      }
    }
    return;
  }
  const Div16 sc = make_div<D>(p.sc);
  const __m512 zp = _mm512_set1_ps(p.zp), lo = _mm512_set1_ps(p.qmin), hi = _mm512_set1_ps(p.qmax);
  const __m512i off = _mm512_set1_epi32(p.offset);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  constexpr size_t es = D == DType::kF32 ? 4 : 2;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    prefetch_ahead(x + i * es, 32 * es);
    __m512i qe, qo;  // codes of the even and odd elements of these 32
    if constexpr (D == DType::kBF16) {
      const __m512i z = _mm512_loadu_si512(x + 2 * i);
      qe = quant16<D, ASYM, NANS>(bf16_even(z), sc, zp, lo, hi, off);
      qo = quant16<D, ASYM, NANS>(bf16_odd(z), sc, zp, lo, hi, off);
    } else {
      const __m512i qa = quant16<D, ASYM, NANS>(V512::load<D>(x + i * es), sc, zp, lo, hi, off);
      const __m512i qb = quant16<D, ASYM, NANS>(V512::load<D>(x + (i + 16) * es), sc, zp, lo, hi, off);
      if constexpr (BITS == 8) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm512_cvtepi32_epi8(qa));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 16), _mm512_cvtepi32_epi8(qb));
        continue;
      }
      qe = _mm512_permutex2var_epi32(qa, even, qb);
      qo = _mm512_permutex2var_epi32(qa, odd, qb);
    }
    if constexpr (BITS == 4) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i / 2), _mm512_cvtepi32_epi8(_mm512_or_si512(qe, _mm512_slli_epi32(qo, 4))));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(_mm512_or_si512(qe, _mm512_slli_epi32(qo, 8))));
    }
  }
}

template <DType D, int BITS>
void int_pack_bits(const uint8_t* x, size_t n, const IntSegParams& p, uint8_t* dst) {
  if (p.asym) {
    if (p.nan) int_pack_t<D, true, true, BITS>(x, n, p, dst);
    else int_pack_t<D, true, false, BITS>(x, n, p, dst);
  } else {
    if (p.nan) int_pack_t<D, false, true, BITS>(x, n, p, dst);
    else int_pack_t<D, false, false, BITS>(x, n, p, dst);
  }
}

template <DType D>
void int_pack(const uint8_t* x, size_t n, const IntSegParams& p, int bits, uint8_t* dst) {
  if (bits == 4) int_pack_bits<D, 4>(x, n, p, dst);
  else int_pack_bits<D, 8>(x, n, p, dst);
}

// fp8 codes of one vector of values already clamped to +-max (so +-Inf never reaches here): the saturating
// conversion, with the subnormal path only when a lane needs it and the NaN code only when NaN may occur.
template <bool E4M3, bool NANS>
inline __m512i fp8_fast(__m512i x) {
  constexpr int EBITS = E4M3 ? 4 : 5, MBITS = E4M3 ? 3 : 2, BIAS = E4M3 ? 7 : 15;
  constexpr int kExpAll = (1 << EBITS) - 1;
  constexpr int kShift = 23 - MBITS;
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i ax = _mm512_and_si512(x, _mm512_set1_epi32(0x7fffffff));
  // Re-bias the exponent and round to nearest even on the dropped bits in one sum (the re-bias is a multiple of
  // 2^23, so the kept LSB is the same before and after it). The inputs are clamped to +-max (a representable
  // value), so no code exceeds the largest finite one: no saturation here.
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(ax, kShift), one);
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(ax, _mm512_set1_epi32(((1 << (kShift - 1)) - 1) - ((127 - BIAS) << 23))), lsb);
  __m512i code = _mm512_srli_epi32(r, kShift);
  // Below the smallest normal (zero included): subnormal codes (0 for zero and for f32 subnormals).
  const __mmask16 small = _mm512_cmplt_epi32_mask(ax, _mm512_set1_epi32((127 + 1 - BIAS) << 23));
  if (small) {
    const __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(ax, 23), _mm512_set1_epi32(127));
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
    code = _mm512_mask_mov_epi32(code, small, q);
  }
  if constexpr (NANS) {
    const __mmask16 is_nan = _mm512_cmpgt_epi32_mask(ax, _mm512_set1_epi32(0x7f800000));
    const __m512i nan_code =
        !E4M3 ? _mm512_or_si512(_mm512_set1_epi32((kExpAll << MBITS) | (1 << (MBITS - 1))),
                                _mm512_and_si512(_mm512_srli_epi32(ax, kShift), _mm512_set1_epi32((1 << MBITS) - 1)))
              : _mm512_set1_epi32((kExpAll << MBITS) | ((1 << MBITS) - 1));
    code = _mm512_mask_mov_epi32(code, is_nan, nan_code);
  }
  // The sign: bit 7 from x >> 24, the rest from the code (a bit select, C ? B : A = 0xD8).
  return _mm512_ternarylogic_epi32(code, _mm512_srli_epi32(x, 24), _mm512_set1_epi32(0x80), 0xD8);
}

template <DType D, bool E4M3, bool NANS>
inline __m512i fp8_vec(__m512 xv, const Div16& sc, __m512 lo, __m512 hi) {
  __m512 v = div_w<D>(xv, sc);
  v = NANS ? round_w<V512, D>(v) : round_w_nonan<V512, D>(v);
  v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));  // NaN (the second operand) passes both
  return fp8_fast<E4M3, NANS>(_mm512_castps_si512(v));
}

template <DType D, bool E4M3, bool NANS>
void fp8_codes_t(const uint8_t* x, size_t n, float scale, uint8_t* codes) {
  constexpr float kMax = E4M3 ? 448.0f : 57344.0f;
  const Div16 sc = make_div<D>(scale);
  const __m512 lo = _mm512_set1_ps(-kMax), hi = _mm512_set1_ps(kMax);
  size_t i = 0;
  if constexpr (D == DType::kBF16) {
    for (; i + 32 <= n; i += 32) {
      prefetch_ahead(x + 2 * i, 64);
      const __m512i z = _mm512_loadu_si512(x + 2 * i);
      const __m512i ce = fp8_vec<D, E4M3, NANS>(bf16_even(z), sc, lo, hi);
      const __m512i co = fp8_vec<D, E4M3, NANS>(bf16_odd(z), sc, lo, hi);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), _mm512_cvtepi32_epi16(_mm512_or_si512(ce, _mm512_slli_epi32(co, 8))));
    }
  } else {
    constexpr size_t es = D == DType::kF32 ? 4 : 2;
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (; i + 64 <= n; i += 64) {
      prefetch_ahead(x + i * es, 64 * es);
      __m512i c[4];
      for (int k = 0; k < 4; ++k) c[k] = fp8_vec<D, E4M3, NANS>(V512::load<D>(x + (i + 16 * k) * es), sc, lo, hi);
      // Codes are <= 255: two saturating packs (per 128-bit lane), then one permute restores the order.
      const __m512i w = _mm512_packus_epi16(_mm512_packus_epi32(c[0], c[1]), _mm512_packus_epi32(c[2], c[3]));
      _mm512_storeu_si512(codes + i, _mm512_permutexvar_epi32(order, w));
    }
  }
  if (i < n) fp8_codes_simd_t<V512, D, E4M3>(x + i * (D == DType::kF32 ? 4 : 2), n - i, scale, codes + i);
}

template <DType D>
void fp8_codes(const uint8_t* x, size_t n, float sc, bool e4m3, bool nan, uint8_t* codes) {
  if (e4m3) {
    if (nan) fp8_codes_t<D, true, true>(x, n, sc, codes);
    else fp8_codes_t<D, true, false>(x, n, sc, codes);
  } else {
    if (nan) fp8_codes_t<D, false, true>(x, n, sc, codes);
    else fp8_codes_t<D, false, false>(x, n, sc, codes);
  }
}

// ---- int_row: 16 groups at a time.

// Lane k of the result: the min (or max) over the 16 lanes of v[k]. Four shuffle levels (45 uops for 16
// reductions instead of ~8 each), then one permute: after them lane 4l + m holds group l + 4m.
template <bool MAX>
inline __m512 op(__m512 a, __m512 b) {
  return MAX ? _mm512_max_ps(a, b) : _mm512_min_ps(a, b);
}

template <bool MAX>
inline __m512 reduce16(const __m512* v) {
  __m512 w[8], u[4], t[2];
  for (int i = 0; i < 8; ++i)
    w[i] = op<MAX>(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int i = 0; i < 4; ++i)
    u[i] = op<MAX>(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int i = 0; i < 2; ++i)
    t[i] = op<MAX>(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 r = op<MAX>(_mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
}

template <DType D>
inline bool is_bad(const uint8_t* x, size_t i) {
  if constexpr (D == DType::kF32) {
    uint32_t u;
    std::memcpy(&u, x + 4 * i, 4);
    return (u & 0x7f800000u) == 0x7f800000u;
  } else {
    uint16_t h;
    std::memcpy(&h, x + 2 * i, 2);
    return D == DType::kBF16 ? (h & 0x7f80u) == 0x7f80u : (h & 0x7c00u) == 0x7c00u;
  }
}

template <DType D>
size_t int_row(const uint8_t* x, size_t ng, size_t g, const IntSegParams& p0, int bits, uint8_t* row, uint8_t* scales, uint8_t* zc) {
  constexpr size_t es = D == DType::kF32 ? 4 : 2;
  size_t bad = SIZE_MAX;
  alignas(64) __m512 mn[16], mx[16];
  alignas(64) float scs[16], zps[16];
  const __m512 lo = _mm512_set1_ps(p0.qmin), hi = _mm512_set1_ps(p0.qmax);
  for (size_t b0 = 0; b0 < ng; b0 += 16) {
    const size_t G = ng - b0 < 16 ? ng - b0 : 16;
    const uint8_t* xb = x + b0 * g * es;
    // min / max per group (widened with 0), one accumulator pair per group; any non-finite weight in the batch.
    __m512i ab = _mm512_setzero_si512();
    for (size_t k = 0; k < 16; ++k) {
      // Four independent min and max chains (two per 32 weights, two 32-weight steps in flight): a whole-row
      // group (channel) would otherwise wait on the min/max latency.
      const __m512 zero = _mm512_setzero_ps();
      __m512 a[4] = {zero, zero, zero, zero}, b[4] = {zero, zero, zero, zero};
      auto step = [&](const uint8_t* p, __m512& a0, __m512& a1, __m512& b0, __m512& b1) {
        __m512 e, o;
        if constexpr (D == DType::kBF16) {
          const __m512i z = _mm512_loadu_si512(p);
          e = bf16_even(z);
          o = bf16_odd(z);
          ab = _mm512_max_epu16(ab, _mm512_and_si512(z, _mm512_set1_epi32(0x7fff7fff)));
        } else {
          e = V512::load<D>(p);
          o = V512::load<D>(p + 16 * es);
          ab = _mm512_max_epu32(ab, _mm512_max_epu32(V512::abs_bits(e), V512::abs_bits(o)));
        }
        a0 = _mm512_min_ps(e, a0);  // NaN lanes keep the accumulator
        a1 = _mm512_min_ps(o, a1);
        b0 = _mm512_max_ps(e, b0);
        b1 = _mm512_max_ps(o, b1);
      };
      if (k < G) {
        const uint8_t* xg = xb + k * g * es;
        size_t i = 0;
        for (; i + 64 <= g; i += 64) {
          step(xg + i * es, a[0], a[1], b[0], b[1]);
          step(xg + (i + 32) * es, a[2], a[3], b[2], b[3]);
        }
        if (i < g) step(xg + i * es, a[0], a[1], b[0], b[1]);
      }
      mn[k] = _mm512_min_ps(_mm512_min_ps(a[0], a[1]), _mm512_min_ps(a[2], a[3]));
      mx[k] = _mm512_max_ps(_mm512_max_ps(b[0], b[1]), _mm512_max_ps(b[2], b[3]));
    }
    bool nan;
    if constexpr (D == DType::kBF16) nan = _mm512_cmpge_epu16_mask(ab, _mm512_set1_epi16(0x7f80)) != 0;
    else nan = _mm512_cmpge_epu32_mask(ab, _mm512_set1_epi32(0x7f800000)) != 0;
    if (nan && bad == SIZE_MAX) {
      for (size_t i = 0; i < G * g; ++i) {
        if (is_bad<D>(xb, i)) {
          bad = b0 * g + i;
          break;
        }
      }
    }
    // Scales and zero points of the batch, lane k = group b0 + k: the scalar reference's steps per lane.
    const __m512 M = reduce16<false>(mn), X = reduce16<true>(mx);
    const __mmask16 live = static_cast<__mmask16>((1u << G) - 1u);
    __m512 sc;
    if (!p0.asym) {
      const __m512 amax = _mm512_max_ps(V512::abs(M), V512::abs(X));
      sc = round_w_nonan<V512, D>(_mm512_div_ps(amax, _mm512_set1_ps(p0.half_range)));
    } else {
      sc = round_w_nonan<V512, D>(_mm512_div_ps(round_w_nonan<V512, D>(_mm512_sub_ps(X, M)), _mm512_set1_ps(p0.range)));
    }
    sc = _mm512_mask_mov_ps(sc, _mm512_cmp_ps_mask(sc, _mm512_setzero_ps(), _CMP_EQ_OQ), _mm512_set1_ps(p0.eps));
    _mm512_store_ps(scs, sc);
    if constexpr (D == DType::kF32) {
      _mm512_mask_storeu_ps(scales + 4 * b0, live, sc);
    } else if constexpr (D == DType::kBF16) {
      _mm512_mask_storeu_epi16(scales + 2 * b0, live, _mm512_castsi256_si512(_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(sc), 16))));
    } else {
      _mm512_mask_storeu_epi16(scales + 2 * b0, live, _mm512_castsi256_si512(_mm512_cvtps_ph(sc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    }
    if (p0.asym) {
      const __m512 t = round_w<V512, D>(_mm512_div_ps(M, sc));  // -Inf / Inf is NaN: keep it NaN
      __m512 z = round_w<V512, D>(_mm512_sub_ps(lo, t));
      const __mmask16 zn = _mm512_cmp_ps_mask(z, z, _CMP_UNORD_Q);
      z = _mm512_maskz_mov_ps(static_cast<__mmask16>(~zn), _mm512_min_ps(_mm512_max_ps(z, lo), hi));
      const __m512i zi = V512::cvt_rne(z);
      _mm512_store_ps(zps, _mm512_cvtepi32_ps(zi));
      _mm512_mask_cvtepi32_storeu_epi8(zc + b0, live, _mm512_add_epi32(zi, _mm512_set1_epi32(p0.offset)));
    }
    // Codes, group by group, from cache.
    for (size_t k = 0; k < G; ++k) {
      IntSegParams p = p0;
      p.sc = scs[k];
      p.zp = p0.asym ? zps[k] : 0.0f;
      p.nan = nan;
      int_pack<D>(xb + k * g * es, g, p, bits, row + (b0 + k) * g * bits / 8);
    }
  }
  return bad;
}

// ---- dequantization

// round_w((u - k) * sc) for one vector of offset codes.
template <DType D>
inline __m512 dq16(__m512i u, __m512i k, __m512 sc) {
  return round_w<V512, D>(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(u, k)), sc));
}

template <DType D>
void int_dequant(const uint8_t* src, size_t n, int bits, int kk, float scale, bool out_f32, uint8_t* out) {
  const __m512i k = _mm512_set1_epi32(kk);
  const __m512 sc = _mm512_set1_ps(scale);
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const bool bf16_out = D == DType::kBF16 && !out_f32;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    __m512 a, b;  // bits 4: the even and odd elements; bits 8: elements 0-15 and 16-31
    if (bits == 4) {
      const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i / 2)));
      a = dq16<D>(_mm512_and_si512(v, _mm512_set1_epi32(15)), k, sc);
      b = dq16<D>(_mm512_srli_epi32(v, 4), k, sc);
      if (bf16_out) {
        const __m512i w = _mm512_or_si512(_mm512_srli_epi32(_mm512_castps_si512(a), 16),
                                          _mm512_and_si512(_mm512_castps_si512(b), _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
        _mm512_storeu_si512(out + 2 * i, w);
        continue;
      }
      const __m512 r0 = _mm512_permutex2var_ps(a, lo_idx, b), r1 = _mm512_permutex2var_ps(a, hi_idx, b);
      a = r0;
      b = r1;
    } else {
      a = dq16<D>(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))), k, sc);
      b = dq16<D>(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16))), k, sc);
      if (bf16_out) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(a), 16)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * i + 32), _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(b), 16)));
        continue;
      }
    }
    _mm512_storeu_ps(out + 4 * i, a);
    _mm512_storeu_ps(out + 4 * i + 64, b);
  }
}

// fp8 code -> f32, arithmetically for finite codes (subnormals through an exact int -> float conversion), and
// from the table for the NaN / Inf codes.
template <bool E4M3>
inline __m512 fp8_decode16(__m512i c, const float* lut) {
  constexpr int MBITS = E4M3 ? 3 : 2, BIAS = E4M3 ? 7 : 15;
  const __m512i a = _mm512_and_si512(c, _mm512_set1_epi32(0x7f));
  const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x80)), 24);
  __m512 v = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(a, 23 - MBITS), _mm512_set1_epi32((127 - BIAS) << 23)));
  const __mmask16 sub = _mm512_cmplt_epi32_mask(a, _mm512_set1_epi32(1 << MBITS));
  v = _mm512_mask_mul_ps(v, sub, _mm512_cvtepi32_ps(a), _mm512_set1_ps(E4M3 ? 0.001953125f : 1.52587890625e-05f));
  v = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), sign));
  const __mmask16 special = _mm512_cmpge_epi32_mask(a, _mm512_set1_epi32(E4M3 ? 0x7f : 0x7c));
  if (special) v = _mm512_mask_i32gather_ps(v, special, c, lut, 4);
  return v;
}

template <bool E4M3>
void fp8_dequant_t(const uint8_t* codes, size_t n, float scale, const float* lut, float* out) {
  const __m512 sc = _mm512_set1_ps(scale);
  for (size_t i = 0; i + 16 <= n; i += 16) {
    const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i)));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(fp8_decode16<E4M3>(c, lut), sc));
  }
}

void fp8_dequant(const uint8_t* codes, size_t n, float sc, bool e4m3, const float* lut, float* out) {
  if (e4m3) fp8_dequant_t<true>(codes, n, sc, lut, out);
  else fp8_dequant_t<false>(codes, n, sc, lut, out);
}

// ---- fp8 tiles (128 x 128 blocks): absmax of up to kTileGroups groups in vector accumulators.

constexpr size_t kTileGroups = 64;

template <DType D>
size_t fp8_tile(const uint8_t* x, size_t nr, size_t stride, size_t ng, size_t g, bool e4m3, float eps, uint8_t* scales,
                uint8_t* out) {
  constexpr size_t es = D == DType::kF32 ? 4 : 2;
  const float fmax = e4m3 ? 448.0f : 57344.0f;
  size_t bad = SIZE_MAX;
  for (size_t b0 = 0; b0 < ng; b0 += kTileGroups) {
    const size_t G = ng - b0 < kTileGroups ? ng - b0 : kTileGroups;
    alignas(64) __m512 am[kTileGroups];
    alignas(64) float scs[kTileGroups];
    __m512i ab = _mm512_setzero_si512();
    for (size_t k = 0; k < kTileGroups; ++k) am[k] = _mm512_setzero_ps();
    for (size_t r = 0; r < nr; ++r) {
      const uint8_t* xr = x + (r * stride + b0 * g) * es;
      for (size_t k = 0; k < G; ++k) {
        __m512 a = am[k];
        for (size_t i = 0; i < g; i += 32) {
          const uint8_t* p = xr + (k * g + i) * es;
          // Two rows down, same columns: the next reads of this pass (the rows are stride apart).
          for (size_t o = 0; o < 32 * es; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + 2 * stride * es + o), _MM_HINT_T1);
          if constexpr (D == DType::kBF16) {
            const __m512i z = _mm512_and_si512(_mm512_loadu_si512(p), _mm512_set1_epi32(0x7fff7fff));
            ab = _mm512_max_epu16(ab, z);
            a = _mm512_max_ps(bf16_odd(z), _mm512_max_ps(bf16_even(z), a));  // |x|; NaN never wins
          } else {
            const __m512 e = V512::abs(V512::load<D>(p)), o = V512::abs(V512::load<D>(p + 16 * es));
            ab = _mm512_max_epu32(ab, _mm512_max_epu32(_mm512_castps_si512(e), _mm512_castps_si512(o)));
            a = _mm512_max_ps(o, _mm512_max_ps(e, a));
          }
        }
        am[k] = a;
      }
    }
    bool nan;
    if constexpr (D == DType::kBF16) nan = _mm512_cmpge_epu16_mask(ab, _mm512_set1_epi16(0x7f80)) != 0;
    else nan = _mm512_cmpge_epu32_mask(ab, _mm512_set1_epi32(0x7f800000)) != 0;
    if (nan) {
      for (size_t k = 0; k < G; ++k) {
        for (size_t r = 0; r < nr; ++r) {
          const uint8_t* xr = x + (r * stride + (b0 + k) * g) * es;
          size_t f = SIZE_MAX;
          for (size_t i = 0; i < g && f == SIZE_MAX; ++i)
            if (is_bad<D>(xr, i)) f = i;
          if (f != SIZE_MAX) {
            const size_t idx = r * stride + (b0 + k) * g + f;
            bad = idx < bad ? idx : bad;
            break;
          }
        }
      }
    }
    for (size_t k0 = 0; k0 < G; k0 += 16) {
      const size_t m = G - k0 < 16 ? G - k0 : 16;
      const __m512 A = reduce16<true>(am + k0);
      __m512 sc = round_w_nonan<V512, D>(_mm512_div_ps(A, _mm512_set1_ps(fmax)));
      sc = _mm512_mask_mov_ps(sc, _mm512_cmp_ps_mask(sc, _mm512_setzero_ps(), _CMP_EQ_OQ), _mm512_set1_ps(eps));
      _mm512_store_ps(scs + k0, sc);
      const __mmask16 live = static_cast<__mmask16>((1u << m) - 1u);
      uint8_t* so = scales + (b0 + k0) * es;
      if constexpr (D == DType::kF32) {
        _mm512_mask_storeu_ps(so, live, sc);
      } else if constexpr (D == DType::kBF16) {
        _mm512_mask_storeu_epi16(so, live, _mm512_castsi256_si512(_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(sc), 16))));
      } else {
        _mm512_mask_storeu_epi16(so, live, _mm512_castsi256_si512(_mm512_cvtps_ph(sc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
      }
    }
    for (size_t r = 0; r < nr; ++r) {
      for (size_t k = 0; k < G; ++k) {
        const size_t off = r * stride + (b0 + k) * g;
        fp8_codes<D>(x + off * es, g, scs[k], e4m3, nan, out + off);
      }
    }
  }
  return bad;
}

template <DType D>
ScaleQuantKernels kernels_for() {
  if constexpr (D == DType::kBF16)
    return ScaleQuantKernels{minmax_bf16, absmax_bf16, int_codes_simd<V512, D>, fp8_codes<D>, int_pack<D>, (1u << 4) | (1u << 8), int_row<D>,
                             int_dequant<D>, true, fp8_dequant, fp8_tile<D>};
  else
    return ScaleQuantKernels{minmax_simd<V512, D>, absmax_simd<V512, D>, int_codes_simd<V512, D>, fp8_codes<D>, int_pack<D>, (1u << 4) | (1u << 8), int_row<D>,
                             int_dequant<D>, D == DType::kF32, fp8_dequant, fp8_tile<D>};
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
