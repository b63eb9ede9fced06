// SPDX-License-Identifier: MIT
// Per-element float format arithmetic shared by every backend (CPU reference, optimized CPU, CUDA): one
// definition of each rounding rule, so the tests of the CPU paths exercise the arithmetic the GPU runs.
// Everything here is bit manipulation on integers plus exact double scaling; nothing depends on the FPU
// rounding mode or on FTZ/DAZ.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define WS_HD __host__ __device__ inline
#else
#define WS_HD inline
#endif

namespace ws {

WS_HD uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
WS_HD float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
WS_HD uint64_t f64_bits(double f) {
  uint64_t u;
  std::memcpy(&u, &f, 8);
  return u;
}
WS_HD double f64_from_bits(uint64_t u) {
  double f;
  std::memcpy(&f, &u, 8);
  return f;
}

// ---- f32 <-> bf16 -------------------------------------------------------------------------------------
// Round to nearest even on the dropped 16 bits; NaN -> quiet NaN with the top 7 payload bits.
WS_HD uint16_t f32_to_bf16(uint32_t x) {
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
// Exact; a signalling NaN comes out quiet.
WS_HD uint32_t bf16_to_f32(uint16_t h) {
  uint32_t x = static_cast<uint32_t>(h) << 16;
  if ((x & 0x7fffffffu) > 0x7f800000u) x |= 0x00400000u;
  return x;
}

// ---- f32 <-> f16 --------------------------------------------------------------------------------------
// Round to nearest even; |x| >= 65520 -> Inf; subnormal results rounded in one step; NaN -> quiet NaN with
// the top 10 payload bits (what x86 F16C's vcvtps2ph does).
WS_HD uint16_t f32_to_f16(uint32_t x) {
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
  if (ax >= 0x38800000u) {                                               // normal f16 range (>= 2^-14)
    uint32_t r = ax - 0x38000000u;                                       // re-bias the exponent 127 -> 15
    r += 0xfffu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | (r >> 13));
  }
  const uint32_t e = ax >> 23;  // value below 2^-14: an f16 subnormal (or zero) counting units of 2^-24
  if (e < 102) return static_cast<uint16_t>(sign);  // below 2^-25: rounds to zero
  const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - e;  // 14..24
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}
// Exact; a signalling NaN comes out quiet (as F16C's vcvtph2ps does).
WS_HD uint32_t f16_to_f32(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  if (e == 0x1f) return sign | 0x7f800000u | (m << 13) | (m ? 0x00400000u : 0u);
  if (e != 0) return sign | ((e + 112u) << 23) | (m << 13);
  if (m == 0) return sign;
  // subnormal: m * 2^-24, normalise
  uint32_t shift = 0;
  uint32_t mm = m;
  while ((mm & 0x400u) == 0) {
    mm <<= 1;
    ++shift;
  }
  return sign | ((113u - shift) << 23) | ((mm & 0x3ffu) << 13);
}

// ---- generic small floats (the spec for every float target) --------------------------------------------
// A binary float format with ebits exponent bits, mbits mantissa bits and an exponent bias. has_inf: IEEE
// style (all-ones exponent = Inf/NaN). Otherwise the OCP "fn" style: only all-ones exponent + all-ones
// mantissa is NaN (f8_e4m3). saturate: finite overflow and +-Inf give +-max finite instead of +-Inf.
struct MiniFloat {
  int ebits;
  int mbits;
  int bias;
  bool has_inf;
  bool saturate;
};

constexpr MiniFloat kFmtF32{8, 23, 127, true, false};
constexpr MiniFloat kFmtF16{5, 10, 15, true, false};
constexpr MiniFloat kFmtBF16{8, 7, 127, true, false};
constexpr MiniFloat kFmtE4M3{4, 3, 7, false, true};
constexpr MiniFloat kFmtE5M2{5, 2, 15, true, true};

// Round a non-negative double below 2^62 to the nearest integer, ties to even, without the FPU mode.
WS_HD uint64_t round_half_even_u64(double m) {
  const double fl = std::floor(m);
  const double d = m - fl;  // exact
  uint64_t q = static_cast<uint64_t>(fl);
  if (d > 0.5 || (d == 0.5 && (q & 1u))) ++q;
  return q;
}

WS_HD uint32_t mf_max_finite(MiniFloat f) {
  const uint32_t exp_all = (1u << f.ebits) - 1u;
  return f.has_inf ? (((exp_all - 1u) << f.mbits) | ((1u << f.mbits) - 1u))
                   : ((exp_all << f.mbits) | ((1u << f.mbits) - 2u));
}

// Encode a double into format f with one round-to-nearest-even step.
WS_HD uint32_t mf_encode(double x, MiniFloat f) {
  const uint64_t xb = f64_bits(x);
  const uint32_t sign = static_cast<uint32_t>(xb >> 63) << (f.ebits + f.mbits);
  const uint32_t exp_all = (1u << f.ebits) - 1u;
  const uint32_t max_finite = mf_max_finite(f);
  const uint32_t inf_code = exp_all << f.mbits;
  if (std::isnan(x)) {
    if (!f.has_inf) return sign | (exp_all << f.mbits) | ((1u << f.mbits) - 1u);
    const uint32_t payload = static_cast<uint32_t>(xb >> (52 - f.mbits)) & ((1u << f.mbits) - 1u);
    return sign | inf_code | (1u << (f.mbits - 1)) | payload;
  }
  const double a = std::fabs(x);
  if (std::isinf(a)) return sign | (f.saturate ? max_finite : inf_code);
  if (a == 0.0) return sign;
  int e2 = 0;
  std::frexp(a, &e2);
  const int e = e2 - 1;  // a = 1.m * 2^e
  const int biased = e + f.bias;
  if (biased > static_cast<int>(exp_all)) return sign | (f.saturate ? max_finite : inf_code);
  uint64_t code;
  if (biased >= 1) {
    // a * 2^(mbits - e) lies in [2^mbits, 2^(mbits+1)); a carry out of the mantissa bumps the exponent.
    const uint64_t q = round_half_even_u64(std::ldexp(a, f.mbits - e));
    code = (static_cast<uint64_t>(biased - 1) << f.mbits) + q;
  } else {
    // subnormal: units of 2^(1 - bias - mbits); scaling up by a power of two is exact.
    code = round_half_even_u64(std::ldexp(a, f.mbits - (1 - f.bias)));
  }
  if (code > max_finite) return sign | (f.saturate ? max_finite : inf_code);
  return sign | static_cast<uint32_t>(code);
}

// Decode a code of format f into a double (exact). NaN comes out as a quiet double NaN keeping the payload.
WS_HD double mf_decode(uint32_t code, MiniFloat f) {
  const uint32_t exp_all = (1u << f.ebits) - 1u;
  const bool neg = (code >> (f.ebits + f.mbits)) & 1u;
  const uint32_t ex = (code >> f.mbits) & exp_all;
  const uint32_t m = code & ((1u << f.mbits) - 1u);
  double v;
  if (f.has_inf && ex == exp_all) {
    if (m == 0) {
      v = HUGE_VAL;
    } else {
      const uint64_t nb = (uint64_t{0x7ff} << 52) | (uint64_t{1} << 51) | (static_cast<uint64_t>(m) << (52 - f.mbits));
      v = f64_from_bits(nb);
    }
  } else if (!f.has_inf && ex == exp_all && m == (1u << f.mbits) - 1u) {
    v = f64_from_bits(uint64_t{0x7ff8000000000000});
  } else if (ex == 0) {
    v = std::ldexp(static_cast<double>(m), 1 - f.bias - f.mbits);
  } else {
    v = std::ldexp(static_cast<double>((1u << f.mbits) | m), static_cast<int>(ex) - f.bias - f.mbits);
  }
  return neg ? -v : v;
}

// f32 -> a saturating 8-bit float (f8_e4m3 / f8_e5m2) with integer arithmetic only: the same result as
// mf_encode(f32 value, F) (test/native checks it over every 2^32 f32 input), at a fraction of the cost.
template <int EBITS, int MBITS, int BIAS, bool HAS_INF>
WS_HD uint8_t f32_to_fp8_sat(uint32_t x) {
  constexpr uint32_t kExpAll = (1u << EBITS) - 1u;
  constexpr uint32_t kMaxFinite = HAS_INF ? (((kExpAll - 1u) << MBITS) | ((1u << MBITS) - 1u))
                                          : ((kExpAll << MBITS) | ((1u << MBITS) - 2u));
  const uint32_t sign = (x >> 24) & 0x80u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) {
    if (!HAS_INF) return static_cast<uint8_t>(sign | (kExpAll << MBITS) | ((1u << MBITS) - 1u));
    return static_cast<uint8_t>(sign | (kExpAll << MBITS) | (1u << (MBITS - 1)) | ((ax >> (23 - MBITS)) & ((1u << MBITS) - 1u)));
  }
  const int e = static_cast<int>(ax >> 23) - 127;  // unbiased f32 exponent (f32 subnormals: tiny, handled below)
  if (e + BIAS >= 1) {
    if (e + BIAS > static_cast<int>(kExpAll)) return static_cast<uint8_t>(sign | kMaxFinite);  // also +-Inf
    constexpr uint32_t kShift = 23 - MBITS;
    uint32_t r = ax - (static_cast<uint32_t>(127 - BIAS) << 23);  // re-bias the exponent
    r += ((1u << (kShift - 1)) - 1u) + ((r >> kShift) & 1u);
    const uint32_t code = r >> kShift;
    return static_cast<uint8_t>(sign | (code > kMaxFinite ? kMaxFinite : code));
  }
  if ((ax >> 23) == 0) return static_cast<uint8_t>(sign);  // zero or f32 subnormal: far below the fp8 range
  // Target subnormal: units of 2^(1 - BIAS - MBITS); the significand has 24 bits.
  const int shift = 23 + (1 - BIAS - MBITS) - e;
  if (shift > 24) return static_cast<uint8_t>(sign);
  const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) ++q;
  return static_cast<uint8_t>(sign | q);
}

WS_HD uint8_t f32_to_e4m3(uint32_t x) { return f32_to_fp8_sat<4, 3, 7, false>(x); }
WS_HD uint8_t f32_to_e5m2(uint32_t x) { return f32_to_fp8_sat<5, 2, 15, true>(x); }

}  // namespace ws
