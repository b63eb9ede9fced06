// SPDX-License-Identifier: MIT
// Calibration statistics of a linear layer's inputs (FORMATS.md c1 Wanda, c2 SparseGPT / c3 GPTQ; DESIGN.md
// section 4, Calibrator). x is a batch [tokens, in] (row-major, f32, f16 or bf16; f16/bf16 are widened to f32
// exactly).
//
// - Column sums of squares, in f64: sums[j] = sum over t of x[t,j]^2, each column summed in token order within
//   blocks of kCalibSumsqTokens tokens, the block sums then added in order (every x^2 of an f32 is exact in
//   f64, so the SIMD kernels give the reference's bits).
// - Gram matrix G = x^T x (in x in, f32, symmetric, both triangles written): G[i][j] = sum over t of
//   x[t,i] * x[t,j]. The reference sums in token order with one rounding per product and per sum; the blocked
//   kernels sum each output tile over tokens in a fixed order, by one thread, so their result does not depend
//   on the thread count. The portable kernel gives the reference's bits; the AVX2 / AVX-512 ones use fused
//   multiply-adds and differ from it by f32 rounding only.
// - Hessian update, tokens-based: with n tokens seen before and b in the batch,
//   H <- H * a + G * c, a = f32(n / (n + b)), c = f32(2 / (n + b)) (H = G * c when n = 0), in f32 with two
//   products and one sum per element (no fused multiply-add), each entry from its own old value (both
//   triangles), so H = (2 / N) sum x x^T over the N tokens seen.
//   A batch of more than calib_pass_tokens(in) tokens is applied as consecutive sub-batches of that size (the
//   optimized kernels pack one sub-batch at a time; the reference does the same).
//   The references (SparseGPT, GPTQ, llm-compressor) count calibration sequences instead of tokens: their H is
//   ours times (tokens per sequence), a constant factor that changes neither the GPTQ / SparseGPT updates
//   (dampening is relative to mean(diag H)) nor any ranking.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

// Tokens per block of the sums of squares (part of the spec: it fixes the order of the f64 additions).
constexpr size_t kCalibSumsqTokens = 256;

// Tokens per pass of the Hessian update (a multiple of 128; the packed f32 copy of a pass stays under 128 MiB).
size_t calib_pass_tokens(size_t in);

// sums[j] = column sums of squares of x (overwritten; in values). Threaded over (token block, column range).
Status calib_sumsq(const void* x, DType dtype, size_t tokens, size_t in, double* sums,
                   const std::atomic<bool>* cancel = nullptr);
Status calib_sumsq_ref(const void* x, DType dtype, size_t tokens, size_t in, double* sums);

// g = x^T x (overwritten; in * in values, both triangles).
Status calib_gram(const void* x, DType dtype, size_t tokens, size_t in, float* g, const std::atomic<bool>* cancel = nullptr);
Status calib_gram_ref(const void* x, DType dtype, size_t tokens, size_t in, float* g);

// h <- h * a + (x^T x) * c as above, in place (in * in values, both triangles). `seen` = n, tokens = b. Not
// cancellable: an interrupted update would leave h half-updated.
Status calib_hessian_update(const void* x, DType dtype, size_t tokens, size_t in, uint64_t seen, float* h);
Status calib_hessian_update_ref(const void* x, DType dtype, size_t tokens, size_t in, uint64_t seen, float* h);

// One calibration batch: sums (the running f64 totals, in values) += the batch's column sums of squares, and,
// when h is not null, the Hessian update above. With check_finite, a NaN or infinite x is refused with
// kNonFinite naming the first row-major index (field "index") and nothing is changed. The batch sums come
// first (cancellable between chunks, nothing changed on kAborted); once the Hessian update has started it
// runs to the end, so the statistics are never left half-updated.
Status calib_add(const void* x, DType dtype, size_t tokens, size_t in, uint64_t seen, double* sums, float* h,
                 bool check_finite, const std::atomic<bool>* cancel = nullptr);
Status calib_add_ref(const void* x, DType dtype, size_t tokens, size_t in, uint64_t seen, double* sums, float* h,
                     bool check_finite);

}  // namespace ws
