// SPDX-License-Identifier: MIT
// Householder QR and singular value decompositions of f32 matrices, row-major, k = min(m, n).
//
// qr: thin QR, a [m x n] = q [m x k] r [k x n], q with orthonormal columns, r upper triangular with a non-negative
// diagonal. Blocked: panels of Householder reflectors in compact WY form (I - V T V^T) whose trailing updates and the
// formation of q run through sgemm.
//
// svd: thin SVD a = u diag(s) vt, u [m x k], s [k] descending and non-negative, vt [k x n]; u and vt have orthonormal
// columns / rows also where singular values are zero (the basis is completed). The matrix is scaled by a power of two
// first (no overflow or underflow of squared norms for entries from ~1e-30 to ~1e30). svd_f32 preconditions with
// QR (of a, or of a^T when wide) and runs a parallel, cache-blocked one-sided Jacobi on the rows of R (Jacobi on
// R^T, which converges in fewer sweeps), then u = Q J through sgemm. svd_batched_f32 runs one-sided (Hestenes)
// Jacobi on each matrix, the matrices in parallel. Every path is independent of the thread count.
//
// Failures: kNonFinite (NaN or infinity in a), kNoConvergence (sweep cap reached), kOutOfMemory, kAborted.
#pragma once

#include <atomic>
#include <cstddef>

#include "weightsmith/status.h"

namespace ws {

Status qr_f32(size_t m, size_t n, const float* a, float* q, float* r, const std::atomic<bool>* cancel = nullptr);
// The reference: unblocked Householder QR, one reflector at a time (the spec the blocked version is tested against).
Status qr_f32_ref(size_t m, size_t n, const float* a, float* q, float* r);

// rank in [1, k]: only the top-rank triplets are written (u [m x rank], s [rank], vt [rank x n]).
Status svd_f32(size_t m, size_t n, const float* a, size_t rank, float* u, float* s, float* vt,
               const std::atomic<bool>* cancel = nullptr);
// a: batch matrices [m x n]; u [batch, m, k], s [batch, k], vt [batch, k, n].
Status svd_batched_f32(size_t batch, size_t m, size_t n, const float* a, float* u, float* s, float* vt,
                       const std::atomic<bool>* cancel = nullptr);
// The reference: plain cyclic one-sided Jacobi on the columns of a (scalar, f64 dot products), no preconditioning.
Status svd_f32_ref(size_t m, size_t n, const float* a, float* u, float* s, float* vt);

// The Jacobi sweep cap (default 60; n <= 0 restores it). For tests of the kNoConvergence path; returns the old cap.
int svd_set_max_sweeps(int n);
// Tests only: the Jacobi kernels keep rows in scaled form and move a scale below 2^-e into its rows (e = 30 by
// default; 0 restores it). A small e exercises that path often. Returns the previous e.
int svd_set_scale_guard(int e);

}  // namespace ws
