// SPDX-License-Identifier: MIT
// bitsandbytes' blockwise 4-bit quantization, NF4 and FP4 (FORMATS.md b5), with the arithmetic of its default
// (pure torch) backend, `quantize_4bit` / `dequantize_4bit`, and the 8-bit blockwise quantizer it uses for
// double quantization (`quantize_blockwise` with the signed dynamic map).
//
// Quantize: the flattened input (f32, f16 or bf16, read as f32) in blocks of `blocksize` elements.
//   A full block: absmax = max |x| (f32; NaN when the block holds a NaN), s = clamp(x * (1 / max(absmax,
//   1e-38)), -1, 1) with the reciprocal and the product each rounded to f32.
//   A trailing partial block: am = max(max |x|, 1e-38), s = clamp(x / am, -1, 1), and am is what is stored.
//   q = the number of bucket bounds b with !(b >= s) (torch.bucketize, right=False: a value on a bound takes the
//   lower bucket, NaN the last), the bounds being the f32 midpoints of the code table sorted ascending; the
//   stored code is the table index of the q-th sorted entry (NF4's table is sorted; FP4's is in bit-pattern
//   order). Two codes per byte, the first element in the high nibble; an odd count is padded with the code of
//   s = 0.
// Dequantize: table[q] * absmax[block], in f32.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

enum class Bnb4Type : int { kNf4 = 0, kFp4 = 1 };

// The 16-entry code table of a type, index -> value (f32), as bitsandbytes' get_4bit_type builds it.
const float* bnb4_table(Bnb4Type type);

// x: n elements of `dtype`; packed: ceil(n/2) bytes; absmax: ceil(n/blocksize) floats. blocksize: a power of
// two from 32 to 4096 (bitsandbytes' set), else kOutOfRange. check_finite: a NaN or infinity is refused with
// kNonFinite naming the first index; otherwise it is quantized the way torch computes it.
Status bnb4_quantize(Bnb4Type type, const void* x, DType dtype, size_t n, size_t blocksize, uint8_t* packed, float* absmax,
                     bool check_finite, const std::atomic<bool>* cancel = nullptr);
// The scalar reference of bnb4_quantize (single-threaded): the spec the optimized kernels are tested against.
Status bnb4_quantize_ref(Bnb4Type type, const void* x, DType dtype, size_t n, size_t blocksize, uint8_t* packed,
                         float* absmax, bool check_finite);

// out: n f32 values table[q] * absmax[block].
Status bnb4_dequantize(Bnb4Type type, const uint8_t* packed, const float* absmax, size_t n, size_t blocksize, float* out,
                       const std::atomic<bool>* cancel = nullptr);
Status bnb4_dequantize_ref(Bnb4Type type, const uint8_t* packed, const float* absmax, size_t n, size_t blocksize, float* out);

// bitsandbytes' create_dynamic_map(signed=True): 256 sorted f32 values, computed the way torch's scalar
// linspace and f32 arithmetic build it.
const float* bnb_dynamic_map();

// 8-bit blockwise quantization (double quantization of absmax values) with the same block rules as above, for
// a sorted 256-entry code table: q[i] = bucket of s among the table's midpoints; absmax per block.
void blockwise8_quantize(const float* x, size_t n, size_t blocksize, const float* code, uint8_t* q, float* absmax);
// bitsandbytes' double quantization of n absmax values: *offset = their mean (summed in f64 in index order,
// rounded to f32), then absmax - offset (f32) through blockwise8_quantize in blocks of 256 with `code`
// (q: n bytes; nested: ceil(n/256) floats). Multi-threaded; the same bytes for any thread count.
Status bnb4_double_quantize(const float* absmax, size_t n, const float* code, uint8_t* q, float* nested, float* offset,
                            const std::atomic<bool>* cancel = nullptr);

// out[i] = code[q[i]] * absmax[i / blocksize], in f32.
void blockwise8_dequantize(const uint8_t* q, const float* absmax, size_t n, size_t blocksize, const float* code, float* out);

}  // namespace ws
