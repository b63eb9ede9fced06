// SPDX-License-Identifier: MIT
// Single-precision matrix multiplication: C[m x n] = op(A) op(B), row-major, op(X) = X or its transpose. Every
// element is the f32 fused multiply-add chain over k in order (c = fma(a_t, b_t, c) from c = 0), so the result
// has the same bits on every SIMD tier and for any thread count, and equals the scalar reference exactly.
#pragma once

#include <atomic>
#include <cstddef>

#include "weightsmith/status.h"

namespace ws {

// a: m x k (k x m when trans_a); b: k x n (n x k when trans_b); c: m x n, overwritten.
Status sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, const float* a, const float* b, float* c,
             const std::atomic<bool>* cancel = nullptr);
// The scalar reference (the spec): a triple loop of std::fma.
Status sgemm_ref(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, const float* a, const float* b, float* c);

}  // namespace ws
