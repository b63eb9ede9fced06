// SPDX-License-Identifier: MIT
// NF4 (bitsandbytes' 4-bit NormalFloat, FORMATS.md b5): blocks of `blocksize` consecutive elements of the
// flattened tensor; absmax per block (f32); s = clamp(x / absmax, -1, 1) computed in the input dtype; the code
// is the bucket of s among the midpoints of the 16-entry table (a value on a midpoint goes to the lower code);
// two codes per byte, the first element in the high nibble; an odd count is padded with code 7 (0.0). An
// all-zero block (absmax 0) gets code 7 throughout.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

extern const float kNf4Table[16];

// x: n elements of f32/f16/bf16; packed: ceil(n/2) bytes; absmax: ceil(n/blocksize) floats.
Status nf4_quantize(const void* x, DType dtype, size_t n, size_t blocksize, uint8_t* packed, float* absmax,
                    bool check_finite, const std::atomic<bool>* cancel = nullptr);

// out: n f32 values code[q] * absmax (the f32 product; callers round to the original dtype).
Status nf4_dequantize(const uint8_t* packed, const float* absmax, size_t n, size_t blocksize, float* out,
                      const std::atomic<bool>* cancel = nullptr);

}  // namespace ws
