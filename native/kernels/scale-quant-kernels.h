// SPDX-License-Identifier: MIT
// Internal: the per-segment kernels of the scale-based quantizers (int RTN and FP8, compressed-tensors math).
// kernels/int-quant.cpp and kernels/fp8-quant.cpp cut the work into groups and chunks and call these on
// contiguous runs of one row; a portable set (kernels/cpu/scale-quant-cpu.cpp) and AVX2 / AVX-512 sets
// (kernels/cpu/arch/x86/scale-quant-*.cpp) are picked per call from simd_level(). Every set gives the same
// bytes as the scalar references in kernels/ref/.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weightsmith/cpu.h"
#include "weightsmith/dtype.h"

namespace ws {

// Parameters of one int group: q = round_even(clamp(round_w(round_w(x / sc) + zp), qmin, qmax)) (the zero
// point only when asym), NaN -> 0; the stored code is q + offset (offset = 2^(bits-1)).
struct IntSegParams {
  float sc;
  float zp;
  float qmin;
  float qmax;
  int offset;
  bool asym;
  bool nan;  // the group may hold NaN or +-Inf (otherwise x / sc is never NaN and kernels may skip that case)
  // For int_row, which computes scales and zero points itself: round_w((qmax - qmin) / 2), qmax - qmin, and the
  // weight dtype's epsilon (the scale of an all-zero group).
  float half_range;
  float range;
  float eps;
};

struct ScaleQuantKernels {
  // Folds n weights into the running *mn / *mx (v < mn ? v : mn; NaN never wins) and *abits (the largest
  // |x| bit pattern: >= 0x7f800000 means a non-finite weight).
  void (*minmax)(const uint8_t* x, size_t n, float* mn, float* mx, uint32_t* abits);
  // Folds n weights into the running *am = max(|x|) (NaN never wins) and *abits.
  void (*absmax)(const uint8_t* x, size_t n, float* am, uint32_t* abits);
  // n offset int codes (0 .. 2^bits - 1), one byte each.
  void (*int_codes)(const uint8_t* x, size_t n, const IntSegParams& p, uint8_t* codes);
  // n fp8 codes: fp8(clamp(round_w(x / sc), -fmax, fmax)) (NaN passes the clamp), e4m3 or e5m2. nan: as in
  // IntSegParams.
  void (*fp8_codes)(const uint8_t* x, size_t n, float sc, bool e4m3, bool nan, uint8_t* codes);
  // Optional (nullptr when absent): n codes (n a multiple of 32) of a bit width in pack_bits (bit b set: b-bit
  // codes) written straight into the bitstream at the byte dst (the LSB-first stream, byte aligned).
  void (*int_pack)(const uint8_t* x, size_t n, const IntSegParams& p, int bits, uint8_t* dst);
  uint32_t pack_bits;
  // Optional: ng whole groups of g weights of one row (g a multiple of 32, bits in pack_bits), fused: min/max of
  // up to 16 groups, their scales and zero points together in vector registers (the reference's arithmetic per
  // lane), then the codes from cache straight into the stream at row (byte aligned). Writes ng scales in the
  // weight dtype at scales and, when asym, ng zero-point codes (zp + offset) at zc. Returns the offset in x of
  // the first non-finite weight, or SIZE_MAX.
  size_t (*int_row)(const uint8_t* x, size_t ng, size_t g, const IntSegParams& p, int bits, uint8_t* row, uint8_t* scales,
                    uint8_t* zc);
  // Optional dequantization of n values (n a multiple of 32) of a byte-aligned stream of codes of a bit width in
  // pack_bits: round_w((u - k) * sc) with k = offset + zero point, computed in f32; written as f32 when out_f32,
  // else as raw weight-dtype values (bf16 / f32 weights only; nullptr-free callers check dequant_wd).
  void (*int_dequant)(const uint8_t* src, size_t n, int bits, int k, float sc, bool out_f32, uint8_t* out);
  bool dequant_wd;  // int_dequant can write weight-dtype values
  // Optional: n fp8 codes (n a multiple of 16) times sc, as f32 (one rounding), e4m3 or e5m2; lut: the 256
  // codes' f32 values (a cast's), used for the NaN / Inf codes.
  void (*fp8_dequant)(const uint8_t* codes, size_t n, float sc, bool e4m3, const float* lut, float* out);
  // Optional: a tile of fp8 groups: nr rows (row stride `stride` weights) x ng groups of g columns each (g a
  // multiple of 32), every group spanning all nr rows. Absmax per group in vector accumulators over the rows,
  // the scales 16 groups at a time (rw(amax / fmax), 0 -> eps), then the codes from cache. Writes ng scales in
  // the weight dtype at scales and the codes at out (same stride). Returns the lowest index (relative to x,
  // counted in weights) of a non-finite weight, or SIZE_MAX.
  size_t (*fp8_tile)(const uint8_t* x, size_t nr, size_t stride, size_t ng, size_t g, bool e4m3, float eps, uint8_t* scales,
                     uint8_t* out);
};

// nullptr when the weight dtype is not f32, f16 or bf16 (or, for the SIMD sets, the CPU lacks the tier).
const ScaleQuantKernels* scale_quant_cpu(DType weight);
const ScaleQuantKernels* scale_quant_avx2(DType weight);
const ScaleQuantKernels* scale_quant_avx512(DType weight);

// The widest set the SIMD level in force allows.
inline const ScaleQuantKernels* scale_quant_best(DType weight) {
#if defined(__x86_64__)
  const SimdLevel l = simd_level();
  if (l >= SimdLevel::kAvx512) {
    if (const ScaleQuantKernels* k = scale_quant_avx512(weight)) return k;
  }
  if (l >= SimdLevel::kAvx2) {
    if (const ScaleQuantKernels* k = scale_quant_avx2(weight)) return k;
  }
#endif
  return scale_quant_cpu(weight);
}

// Writes n offset codes (each < 2^bits) as an LSB-first bitstream starting at bit `bitpos` of `row` (a
// little-endian word stream); the bits it covers must be zero beforehand (the bytes are OR-ed where shared).
void pack_codes(const uint8_t* codes, size_t n, int bits, uint8_t* row, size_t bitpos);

}  // namespace ws
