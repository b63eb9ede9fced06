// SPDX-License-Identifier: MIT
// Internal: the packed GEMM driver behind dgemm, syrk, cholesky and trsm (kernels/dgemm.cpp) and its micro-kernels.
#pragma once

#include <atomic>
#include <cstddef>

#include "weightsmith/status.h"

namespace ws {

// Micro-kernel: c[r][q] (row stride ldc) = (first ? 0 : c[r][q]) + the fma chain over t < k of
// a[kFactorMr t + r] * b[nr t + q], r < kFactorMr, q < nr (48 for float, 24 for double). A block packed
// [k][8], B panel packed [k][nr].
constexpr size_t kFactorMr = 8;
template <typename T>
using FactorMicroFn = void (*)(const T* a, const T* b, size_t k, T* c, size_t ldc, bool first);

FactorMicroFn<double> dgemm_micro_avx512_fn();
FactorMicroFn<double> dgemm_micro_avx2_fn();
FactorMicroFn<float> sgemm_micro_avx2_fn();

// C (m x n, row stride ldc) = (accumulate ? C : 0) +/- op(A) op(B), each element one fma chain in k order. A element
// (i, t) is a[t lda + i] when ta else a[i lda + t]; B element (t, j) is b[j ldb + t] when tb else b[t ldb + j].
// lower: tiles wholly above the diagonal (column > row for every element) are skipped; tiles crossing it are
// computed in full. Chunks are fixed pairs of 8-row blocks.
template <typename T>
Status gemm_update(bool ta, bool tb, size_t m, size_t n, size_t k, const T* a, size_t lda, const T* b, size_t ldb,
                   T* c, size_t ldc, bool negate, bool accumulate, bool lower, const std::atomic<bool>* cancel);

}  // namespace ws
