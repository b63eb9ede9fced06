// SPDX-License-Identifier: MIT
// Dense factorizations for GPTQ / SparseGPT-style solvers, row-major, in f32 and f64:
// - dgemm: f64 C = op(A) op(B); every element is the f64 fused multiply-add chain over k in order from 0, so the
//   result has the same bits on every SIMD tier and for any thread count, and equals dgemm_ref exactly.
// - syrk: the full symmetric A Aᵀ (or Aᵀ A with trans); only the lower triangle is computed (the same FMA chains
//   as the GEMM, so it equals gemm(A, Aᵀ) bit for bit), then mirrored.
// - cholesky: A = L Lᵀ, recursive blocked (leaf factor, TRSM panel, SYRK/GEMM trailing update on the packed
//   kernels). Only the lower triangle of A is read. Not positive definite -> kNoConvergence naming the order of the
//   first leading minor that is not; non-finite input -> kNonFinite. Output: L (zero above the diagonal), or U = Lᵀ.
// - cholesky_inverse: (L Lᵀ)^-1 from L (or from U with upper, (Uᵀ U)^-1), full symmetric.
// - trsm: solves op(A) X = B (left) or X op(A) = B (right), A triangular; a zero diagonal -> kNoConvergence.
// Results of the optimized routines are bit-identical for any thread count and SIMD tier (the GEMM micro-kernels
// compute the same FMA chains on every tier; the small leaf kernels use plain multiply/subtract); they match the
// scalar references (the *_ref functions, the spec) within rounding.
#pragma once

#include <atomic>
#include <cstddef>

#include "weightsmith/status.h"

namespace ws {

// a: m x k (k x m when trans_a); b: k x n (n x k when trans_b); c: m x n, overwritten.
Status dgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, const double* a, const double* b, double* c,
             const std::atomic<bool>* cancel = nullptr);
Status dgemm_ref(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, const double* a, const double* b, double* c);

// c (n x n) = a aᵀ with a n x k, or aᵀ a with trans and a k x n. Non-finite a -> kNonFinite.
template <typename T>
Status syrk(bool trans, size_t n, size_t k, const T* a, T* c, const std::atomic<bool>* cancel = nullptr);
template <typename T>
Status syrk_ref(bool trans, size_t n, size_t k, const T* a, T* c);

// out (n x n) = L, or U = Lᵀ with upper, from the lower triangle of a (n x n).
template <typename T>
Status cholesky(size_t n, const T* a, T* out, bool upper, const std::atomic<bool>* cancel = nullptr);
template <typename T>
Status cholesky_ref(size_t n, const T* a, T* out, bool upper);

// out (n x n) = (L Lᵀ)^-1 where L is the lower triangle of l (or (Uᵀ U)^-1, U the upper triangle, with upper).
template <typename T>
Status cholesky_inverse(size_t n, const T* l, T* out, bool upper, const std::atomic<bool>* cancel = nullptr);
template <typename T>
Status cholesky_inverse_ref(size_t n, const T* l, T* out, bool upper);

// x (m x n) solves op(A) X = B (left; A m x m) or X op(A) = B (right; A n x n), op(A) = A or Aᵀ (trans); A is the
// lower (or upper) triangle of a; unit: the diagonal is taken as 1 and not read.
struct TrsmSpec {
  bool left = true, upper = false, trans = false, unit = false;
};
template <typename T>
Status trsm(const TrsmSpec& spec, size_t m, size_t n, const T* a, const T* b, T* x,
            const std::atomic<bool>* cancel = nullptr);
template <typename T>
Status trsm_ref(const TrsmSpec& spec, size_t m, size_t n, const T* a, const T* b, T* x);

}  // namespace ws
