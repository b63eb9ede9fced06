// SPDX-License-Identifier: MIT
// ggml block formats (FORMATS.md b3): dequantization exactly as ggml's dequantize_row_* (same float
// operations in the same order, no contraction), so the f32 output is bit-identical to ggml's.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/status.h"

namespace ws {

// Whether weightsmith can dequantize this ggml type id.
bool ggml_can_dequantize(uint32_t type);

// Dequantizes n elements (a multiple of the type's block size) from `blocks` (n / block_size blocks) to f32.
// Single-threaded reference.
Status ggml_dequantize_ref(uint32_t type, const uint8_t* blocks, float* out, size_t n);

// The same on the thread pool, cut into fixed groups of blocks (identical output for any thread count).
Status ggml_dequantize(uint32_t type, const uint8_t* blocks, float* out, size_t n, const std::atomic<bool>* cancel = nullptr);

// Whether weightsmith can quantize to this ggml type id (byte-identical to ggml's quantize_row_*_ref).
bool ggml_can_quantize(uint32_t type);

// Quantizes n f32 values (a multiple of the block size, all finite) into n / block_size blocks, exactly as
// ggml's reference quantizer (no importance matrix). Single-threaded reference.
Status ggml_quantize_ref(uint32_t type, const float* x, uint8_t* blocks, size_t n);

// The same on the thread pool in fixed groups of blocks. With check_finite, each group is scanned just before
// it is quantized (while it is in cache) and a non-finite value gives kNonFinite naming the lowest index.
Status ggml_quantize(uint32_t type, const float* x, uint8_t* blocks, size_t n, const std::atomic<bool>* cancel = nullptr,
                     bool check_finite = false);

// ggml's fp32 -> fp16 (round to nearest even; NaN -> 0x7E00 with the sign kept).
uint16_t ggml_fp32_to_fp16(float f);

}  // namespace ws
