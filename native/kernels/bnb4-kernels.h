// SPDX-License-Identifier: MIT
// Internal: the codebooks of bitsandbytes' 4-bit types and the per-block kernels. The reference block kernel
// (kernels/ref/bnb4-ref.cpp) is the spec; the optimized variants (kernels/cpu/arch/x86/) give identical bytes
// and are chosen by kernels/bnb4.cpp when the SIMD tier allows.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weightsmith/bnb4.h"
#include "weightsmith/dtype.h"

namespace ws {

struct Bnb4Codebook {
  float table[16];    // index -> value
  float bounds[16];   // midpoints of the ascending values (15), then +infinity
  int32_t order[16];  // bucket -> index (the identity for NF4)
  uint8_t zero_code;  // the code of s = 0 (padding)
  // A 32-cell lookup for s in [-1, 1]: cell c = [c/16 - 1, (c+1)/16 - 1) holds at most one bound, and
  // cell_base[c] = the number of bounds below the cell, so the bucket is cell_base[c] + (bounds[cell_base[c]] < s).
  // Valid (cell_lut) when every cell holds at most one bound and no bound lies within 1e-5 of a cell edge, so
  // that the rounding of (s + 1) * 16 cannot pick the wrong cell (NF4; FP4's bounds are too close together).
  bool cell_lut;
  // The same with two compares, bucket = cell_base[c] + (bounds[b] < s) + (bounds[min(b + 1, 15)] < s): valid when
  // every cell holds at most two bounds, no bound lies within 1e-5 of an edge except exactly on it, and the cell
  // below an edge that holds a bound has at most one (FP4: the bounds at -0.0026, 0 and 0.0026).
  bool cell_lut2;
  int32_t cell_base[32];
};

const Bnb4Codebook& bnb4_codebook(Bnb4Type type);

// kOutOfRange unless blocksize is one of bitsandbytes' sizes (32 ... 4096, powers of two).
Status bnb4_check(size_t blocksize);

// The smallest absmax the quantizer divides by (torch's clamp(min=1e-38) on f32).
constexpr float kBnbMinAbsmax = static_cast<float>(1e-38);

// Quantizes elements [lo, hi) as one block (`full`: a whole block, scaled by the reciprocal; otherwise the
// trailing partial block, divided), writing its codes from packed[lo / 2] (lo is even) and *absmax. Returns the
// index of the first non-finite element of the block, or SIZE_MAX.
size_t bnb4_block_ref(const Bnb4Codebook& cb, const uint8_t* x, DType dtype, size_t lo, size_t hi, bool full,
                      uint8_t* packed, float* absmax);

// Quantizes `nblocks` whole blocks from block `first`; a block holding a non-finite value goes through
// bnb4_block_ref. Returns the first non-finite index, or SIZE_MAX.
using Bnb4QuantFn = size_t (*)(const Bnb4Codebook& cb, const uint8_t* x, DType dtype, size_t first, size_t nblocks,
                               size_t blocksize, uint8_t* packed, float* absmax);
// Dequantizes `nblocks` whole blocks from block `first`.
using Bnb4DequantFn = void (*)(const Bnb4Codebook& cb, const uint8_t* packed, const float* absmax, size_t first,
                               size_t nblocks, size_t blocksize, float* out);

Bnb4QuantFn bnb4_quant_avx2_fn();
Bnb4DequantFn bnb4_dequant_avx2_fn();
Bnb4QuantFn bnb4_quant_avx512_fn();
Bnb4DequantFn bnb4_dequant_avx512_fn();

}  // namespace ws
