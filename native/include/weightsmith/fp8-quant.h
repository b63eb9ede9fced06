// SPDX-License-Identifier: MIT
// FP8 weight quantization with compressed-tensors' symmetric math (FORMATS.md b4): per group (the whole
// tensor, each row, or each block of rows x cols), scale = absmax / fp8_max computed and rounded in the
// weight's dtype (0 -> that dtype's epsilon); codes = fp8(clamp(x / scale, -max, max)), the division also
// rounded to the weight dtype first (as torch does for f16/bf16 tensors).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

struct Fp8QuantSpec {
  DType weight_dtype = DType::kF32;  // f32, f16 or bf16: the dtype of x and of the scales
  DType fp8 = DType::kF8E4M3;        // kF8E4M3 or kF8E5M2
  size_t rows = 1;
  size_t cols = 1;
  size_t block_rows = 0;  // scale groups: rows x cols of each group; the whole tensor when rows/cols
  size_t block_cols = 0;
  bool check_finite = true;  // a non-finite weight gives kNonFinite naming the lowest index
};

// x: rows*cols elements of weight_dtype (raw bytes). out: rows*cols fp8 codes. scales: one f32 per group
// (ceil(rows/block_rows) x ceil(cols/block_cols), row-major), each exactly representable in weight_dtype.
Status fp8_quantize(const Fp8QuantSpec& spec, const void* x, uint8_t* out, float* scales,
                    const std::atomic<bool>* cancel = nullptr);

}  // namespace ws
