// SPDX-License-Identifier: MIT
// Internal: per-type ggml block kernels. Reference kernels (kernels/ref/) are the spec; optimized CPU variants
// (kernels/cpu/arch/x86/) are byte-identical and are chosen by kernels/ggml.cpp when the SIMD tier allows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ws {

// Quantizes nblocks consecutive blocks (block_size f32 values each) into nblocks * type_size bytes.
using GgmlQuantFn = void (*)(const float* x, uint8_t* blocks, size_t nblocks);
// Dequantizes nblocks consecutive blocks to f32.
using GgmlDequantFn = void (*)(const uint8_t* blocks, float* y, size_t nblocks);

GgmlQuantFn ggml_quant_ref_fn(uint32_t type);      // nullptr when the type is not supported
GgmlDequantFn ggml_dequant_ref_fn(uint32_t type);  // nullptr when the type is not supported
GgmlQuantFn ggml_quant_avx2_fn(uint32_t type);     // nullptr when there is no AVX2 variant
GgmlQuantFn ggml_quant_avx512_fn(uint32_t type);   // nullptr when there is no AVX-512 variant
// Quantizes and reports the first non-finite value in the same pass: its index from x, or SIZE_MAX. Blocks after
// the group holding it may be left unwritten (the caller fails).
using GgmlQuantCheckedFn = size_t (*)(const float* x, uint8_t* blocks, size_t nblocks);
GgmlQuantCheckedFn ggml_quant_avx512_checked_fn(uint32_t type);  // nullptr when there is none
// q4_K, q5_K and q6_K (nullptr for other types): lane-parallel searches, in AVX2 and AVX-512 builds.
GgmlQuantFn ggml_kquant_avx2_fn(uint32_t type);
GgmlQuantFn ggml_kquant_avx512_fn(uint32_t type);

}  // namespace ws
