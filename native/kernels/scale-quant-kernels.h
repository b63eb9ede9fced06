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
};

struct ScaleQuantKernels {
  // Folds n weights into the running *mn / *mx (v < mn ? v : mn; NaN never wins) and *abits (the largest
  // |x| bit pattern: >= 0x7f800000 means a non-finite weight).
  void (*minmax)(const uint8_t* x, size_t n, float* mn, float* mx, uint32_t* abits);
  // Folds n weights into the running *am = max(|x|) (NaN never wins) and *abits.
  void (*absmax)(const uint8_t* x, size_t n, float* am, uint32_t* abits);
  // n offset int codes (0 .. 2^bits - 1), one byte each.
  void (*int_codes)(const uint8_t* x, size_t n, const IntSegParams& p, uint8_t* codes);
  // n fp8 codes: fp8(clamp(round_w(x / sc), -fmax, fmax)) (NaN passes the clamp), e4m3 or e5m2.
  void (*fp8_codes)(const uint8_t* x, size_t n, float sc, bool e4m3, uint8_t* codes);
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
