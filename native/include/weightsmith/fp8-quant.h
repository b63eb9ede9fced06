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

// x: rows*cols elements of weight_dtype (raw bytes). out: rows*cols fp8 codes. scales: one per group
// (ceil(rows/block_rows) x ceil(cols/block_cols), row-major) in weight_dtype (raw 2- or 4-byte values).
// The optimized quantizer: fused per group, SIMD per the CPU's tier, on the thread pool; byte-identical to
// fp8_quantize_ref for every input and thread count.
Status fp8_quantize(const Fp8QuantSpec& spec, const void* x, uint8_t* out, void* scales,
                    const std::atomic<bool>* cancel = nullptr);

// The scalar reference (kernels/ref/fp8-quant-ref.cpp): the specification, single-threaded.
Status fp8_quantize_ref(const Fp8QuantSpec& spec, const void* x, uint8_t* out, void* scales);

// out[i] = f32(code) * f32(scale) in f32 (one rounding), written as f32. scales as fp8_quantize writes them.
Status fp8_dequantize(const Fp8QuantSpec& spec, const uint8_t* codes, const void* scales, float* out,
                      const std::atomic<bool>* cancel = nullptr);

}  // namespace ws
