// SPDX-License-Identifier: MIT
// Vector helpers shared by the QR and SVD kernels (qr.cpp, svd.cpp): a portable version in svd.cpp and an AVX-512
// one in cpu/arch/x86/svd-avx512.cpp, picked by svd_ops() from simd_level(). Dots accumulate in 64 f32 partial sums
// (element i into sum i mod 64, folded as in fold64 / dot_avx512, then 16 lanes added in f64), the same on both
// tiers, so results have the same bits on every tier and for any thread count.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>

#include "weightsmith/status.h"

namespace ws {

struct SvdOps {
  // sum of x[i] * y[i]
  double (*dot)(const float* x, const float* y, size_t n);
  // y += alpha * x
  void (*axpy)(float* y, const float* x, size_t n, float alpha);
  // x' = fma(-s, y, c x), y' = fma(s, x, c y)
  void (*rot)(float* x, float* y, size_t n, float c, float s);
  // fast (unnormalized) rotation: x' = fma(-a, y, x), y' = fma(b, x, y), both from the old x and y
  void (*frot)(float* x, float* y, size_t n, float a, float b);
  // max |x[i]|, or -1 when x holds a NaN or an infinity (exact: the same on every tier)
  float (*max_abs)(const float* x, size_t n);
  // Batched one-sided Jacobi on 16 matrices interleaved lane by lane (null on tiers without it):
  // w[(i * l + r) * 16 + lane] holds the k rows (length l) to orthogonalize, jt[(i * k + c) * 16 + lane] is set to
  // the identity and accumulates the rotations. Each lane runs exactly the arithmetic of jacobi_serial (svd.cpp) on
  // its own matrix, so results do not depend on how matrices are grouped. Returns the sweeps run, or -1 at the cap.
  // Rows are kept in scaled form as in jacobi_serial; a scale below 2^-guard moves into its rows.
  int (*jacobi16)(size_t k, size_t l, float* w, float* jt, float tol, float tiny, int max_sweeps, int guard);
};

const SvdOps& svd_ops();
const SvdOps* svd_ops_avx512();  // null when not built for x86-64

// Shared by qr.cpp and svd.cpp: max |a|, or a negative value when a holds a NaN or an infinity (index in *bad).
float max_abs_f32(const float* a, size_t n, size_t* bad);
float max_abs_portable(const float* a, size_t n);
// e with max_abs * 2^-e in [0.5, 1) (0 when max_abs is 0 or subnormal-small).
int pow2_exponent_for(float max_abs);
// x * 2^e as x * 2^(e/2) * 2^(e - e/2): exact while the result is a normal number (|e| up to 252 works). Build one
// Pow2 per matrix and apply it per element.
struct Pow2 {
  float f1, f2;
  explicit Pow2(int e) : f1(std::ldexp(1.0f, e / 2)), f2(std::ldexp(1.0f, e - e / 2)) {}
  float operator()(float x) const { return x * f1 * f2; }
};
inline float scale_pow2(float x, int e) { return Pow2(e)(x); }

// Blocked Householder QR of the m x n row-major matrix a (overwritten). Writes r [k x n] (upper triangular, diagonal
// >= 0) and, when q is not null, the thin q [m x k].
Status qr_blocked(size_t m, size_t n, float* a, float* q, float* r, const std::atomic<bool>* cancel);
}  // namespace ws
