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

// Groups per row (1 for whole rows and for the whole tensor) and in all.
inline size_t int_groups_per_row(const IntQuantSpec& s) {
  const size_t g = s.whole_tensor || s.group == 0 ? s.cols : s.group;
  return s.whole_tensor || g == 0 ? 1 : (s.cols + g - 1) / g;
}
inline size_t int_group_count(const IntQuantSpec& s) { return s.whole_tensor ? 1 : s.rows * int_groups_per_row(s); }
// 32-bit words of one packed row of cols codes, and of one packed zero-point column of rows codes.
inline size_t int_words_per_row(size_t n, int bits) { return (n * static_cast<size_t>(bits) + 31) / 32; }

// The stored parts, in compressed-tensors' pack-quantized layout:
//   packed: rows x int_words_per_row(cols, bits) words (int_pack_rows' layout);
//   scales: one per group, row-major [rows, groups per row] (or [1]), in the weight dtype (raw 2- or 4-byte
//     values);
//   zero_points (asymmetric only; may be null when symmetric): for the whole tensor one int32, the signed zero
//     point; otherwise [int_words_per_row(rows, bits), groups per row] words: for each group column, the rows'
//     zero points (offset like the codes) packed along the rows, word w of column g at w * groups + g.
struct IntQuantOut {
  uint32_t* packed = nullptr;
  void* scales = nullptr;
  uint32_t* zero_points = nullptr;
};

// The optimized quantizer: fused (one read of each group), SIMD per the CPU's tier, on the thread pool.
// Byte-identical to int_quantize_ref for every input and thread count.
Status int_quantize(const IntQuantSpec& spec, const void* x, const IntQuantOut& out, const std::atomic<bool>* cancel = nullptr);

// The scalar reference (kernels/ref/int-quant-ref.cpp): the specification, single-threaded.
Status int_quantize_ref(const IntQuantSpec& spec, const void* x, const IntQuantOut& out);

// The reference's first stage: codes: rows*cols int8 codes (q, signed). scales: one f32 per group (exactly
// representable in the weight dtype); zero_points: one int32 per group (all 0 when symmetric).
Status int_quantize_codes_ref(const IntQuantSpec& spec, const void* x, int8_t* codes, float* scales, int32_t* zero_points);

// pack-quantized: each row of `cols` b-bit codes, offset to unsigned (q + 2^(b-1)), as an LSB-first bitstream
// in ceil(cols*b/32) little-endian 32-bit words.
void int_pack_rows(const int8_t* codes, size_t rows, size_t cols, int bits, uint32_t* words);

// The inverse of int_pack_rows.
void int_unpack_rows(const uint32_t* words, size_t rows, size_t cols, int bits, int8_t* codes);

// Dequantization of the parts above (same spec; check_finite unused): out[i] = (q - zp) * scale computed in
// f32 and rounded once to the weight dtype; out_dtype is the weight dtype (raw values) or f32 (the rounded
// values widened). On the thread pool; identical for any thread count.
Status int_dequantize(const IntQuantSpec& spec, const uint32_t* packed, const void* scales, const uint32_t* zero_points,
                      void* out, DType out_dtype, const std::atomic<bool>* cancel = nullptr);

}  // namespace ws
