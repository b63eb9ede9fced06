// SPDX-License-Identifier: MIT
// Integer round-to-nearest weight quantization with compressed-tensors' math (FORMATS.md b4), and its
// pack-quantized layout. Per group (the whole tensor, each row, or `group` consecutive columns of a row):
//   min/max widened to include 0; q_min = -2^(b-1), q_max = 2^(b-1) - 1;
//   symmetric: scale = max(|min|, |max|) / ((q_max - q_min) / 2), zero point 0;
//   asymmetric: scale = (max - min) / (q_max - q_min), zp = round(clamp(q_min - min / scale, q_min, q_max));
//   scale 0 -> the scale dtype's epsilon; q = round(clamp(x / scale + zp, q_min, q_max)), ties to even.
// Every operation is rounded to the weight dtype (f32, f16 or bf16), as torch computes it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

struct IntQuantSpec {
  DType weight_dtype = DType::kF32;
  int bits = 4;
  bool symmetric = true;
  size_t rows = 1;
  size_t cols = 1;
  size_t group = 0;          // columns per group; 0 = the whole row
  bool whole_tensor = false;  // one group for the whole tensor
  bool check_finite = true;
};

// codes: rows*cols int8 codes (q, signed). scales: one f32 per group (exactly representable in the weight
// dtype); zero_points: one int32 per group (all 0 when symmetric). Groups are row-major: [rows, cols/group],
// or [1] for the whole tensor.
Status int_quantize(const IntQuantSpec& spec, const void* x, int8_t* codes, float* scales, int32_t* zero_points,
                    const std::atomic<bool>* cancel = nullptr);

// pack-quantized: each row of `cols` b-bit codes, offset to unsigned (q + 2^(b-1)), as an LSB-first bitstream
// in ceil(cols*b/32) little-endian 32-bit words.
void int_pack_rows(const int8_t* codes, size_t rows, size_t cols, int bits, uint32_t* words);

// The inverse of int_pack_rows.
void int_unpack_rows(const uint32_t* words, size_t rows, size_t cols, int bits, int8_t* codes);

}  // namespace ws
