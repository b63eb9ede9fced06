// SPDX-License-Identifier: MIT
// Portable per-segment kernels of the int and FP8 quantizers (the baseline tier), and the code packer. The
// per-element arithmetic is the reference's (weight-math.h, float-bits.h); the loops are written so the
// compiler can vectorize the reductions.
#include <cmath>
#include <cstring>

#include "../scale-quant-kernels.h"
#include "../weight-math.h"
#include "weightsmith/float-bits.h"

namespace ws {

namespace {

// Round half to even; |v| <= 2^7 here (v is already clamped, never NaN).
inline int round_even(float v) {
  const float fl = std::floor(v);
  const float d = v - fl;
  const int i = static_cast<int>(fl);
  return d > 0.5f || (d == 0.5f && (i & 1)) ? i + 1 : i;
}

template <DType D>
void minmax_cpu(const uint8_t* x, size_t n, float* mn_io, float* mx_io, uint32_t* abits_io) {
  float mn = *mn_io, mx = *mx_io;
  uint32_t ab = *abits_io;
  for (size_t k = 0; k < n; ++k) {
    const float v = load_weight<D>(x, k);
    const uint32_t a = f32_bits(v) & 0x7fffffffu;
    ab = a > ab ? a : ab;
    mn = v < mn ? v : mn;
    mx = v > mx ? v : mx;
  }
  *mn_io = mn;
  *mx_io = mx;
  *abits_io = ab;
}

template <DType D>
void absmax_cpu(const uint8_t* x, size_t n, float* am_io, uint32_t* abits_io) {
  float m = *am_io;
  uint32_t ab = *abits_io;
  for (size_t k = 0; k < n; ++k) {
    const float a = std::fabs(load_weight<D>(x, k));
    const uint32_t b = f32_bits(a);
    ab = b > ab ? b : ab;
    m = a > m ? a : m;
  }
  *am_io = m;
  *abits_io = ab;
}

template <DType D>
void int_codes_cpu(const uint8_t* x, size_t n, const IntSegParams& p, uint8_t* codes) {
  for (size_t j = 0; j < n; ++j) {
    float v = round_to_weight<D>(load_weight<D>(x, j) / p.sc);
    if (p.asym) v = round_to_weight<D>(v + p.zp);
    v = v < p.qmin ? p.qmin : (v > p.qmax ? p.qmax : v);
    const int q = v != v ? 0 : round_even(v);
    codes[j] = static_cast<uint8_t>(q + p.offset);
  }
}

template <DType D>
void fp8_codes_cpu(const uint8_t* x, size_t n, float sc, bool e4m3, bool /*nan*/, uint8_t* codes) {
  const float fmax = e4m3 ? 448.0f : 57344.0f;
  for (size_t k = 0; k < n; ++k) {
    float q = round_to_weight<D>(load_weight<D>(x, k) / sc);
    q = q < -fmax ? -fmax : (q > fmax ? fmax : q);
    codes[k] = e4m3 ? f32_to_e4m3(f32_bits(q)) : f32_to_e5m2(f32_bits(q));
  }
}

template <DType D>
constexpr ScaleQuantKernels kernels_for() {
  return ScaleQuantKernels{minmax_cpu<D>, absmax_cpu<D>, int_codes_cpu<D>, fp8_codes_cpu<D>, nullptr, 0, nullptr, nullptr, false, nullptr, nullptr};
}

constexpr ScaleQuantKernels kF32 = kernels_for<DType::kF32>();
constexpr ScaleQuantKernels kF16 = kernels_for<DType::kF16>();
constexpr ScaleQuantKernels kBF16 = kernels_for<DType::kBF16>();

// 8 codes of BITS bits (one per byte of v) -> 8*BITS contiguous bits (LSB first), by three merge steps.
template <int BITS>
inline uint64_t squeeze8(uint64_t v) {
  constexpr uint64_t k16 = 0x00ff00ff00ff00ffull, k32 = 0x0000ffff0000ffffull, k64 = 0x00000000ffffffffull;
  v = (v & k16) | (((v >> 8) & k16) << BITS);
  v = (v & k32) | (((v >> 16) & k32) << (2 * BITS));
  v = (v & k64) | ((v >> 32) << (4 * BITS));
  return v;
}

template <int BITS>
void pack_bits(const uint8_t* codes, size_t n, uint8_t* row, size_t bitpos) {
  size_t j = 0;
  // Single codes up to a byte boundary.
  for (; j < n && (bitpos + j * BITS) % 8 != 0; ++j) {
    const size_t bit = bitpos + j * BITS;
    const uint32_t u = codes[j];
    row[bit / 8] |= static_cast<uint8_t>(u << (bit % 8));
    if (bit % 8 + BITS > 8) row[bit / 8 + 1] |= static_cast<uint8_t>(u >> (8 - bit % 8));
  }
  // 8 codes -> BITS whole bytes.
  uint8_t* out = row + (bitpos + j * BITS) / 8;
  if constexpr (BITS == 8) {
    const size_t m = n - j;
    std::memcpy(out, codes + j, m);
    return;
  } else {
    for (; j + 8 <= n; j += 8, out += BITS) {
      uint64_t v;
      std::memcpy(&v, codes + j, 8);
      v = squeeze8<BITS>(v);
      std::memcpy(out, &v, BITS);  // little-endian: the low BITS bytes
    }
    for (; j < n; ++j) {
      const size_t bit = bitpos + j * BITS;
      const uint32_t u = codes[j];
      row[bit / 8] |= static_cast<uint8_t>(u << (bit % 8));
      if (bit % 8 + BITS > 8) row[bit / 8 + 1] |= static_cast<uint8_t>(u >> (8 - bit % 8));
    }
  }
}

}  // namespace

const ScaleQuantKernels* scale_quant_cpu(DType weight) {
  switch (weight) {
    case DType::kF32: return &kF32;
    case DType::kF16: return &kF16;
    case DType::kBF16: return &kBF16;
    default: return nullptr;
  }
}

void pack_codes(const uint8_t* codes, size_t n, int bits, uint8_t* row, size_t bitpos) {
  switch (bits) {
    case 1: return pack_bits<1>(codes, n, row, bitpos);
    case 2: return pack_bits<2>(codes, n, row, bitpos);
    case 3: return pack_bits<3>(codes, n, row, bitpos);
    case 4: return pack_bits<4>(codes, n, row, bitpos);
    case 5: return pack_bits<5>(codes, n, row, bitpos);
    case 6: return pack_bits<6>(codes, n, row, bitpos);
    case 7: return pack_bits<7>(codes, n, row, bitpos);
    default: return pack_bits<8>(codes, n, row, bitpos);
  }
}

}  // namespace ws
