// SPDX-License-Identifier: MIT
// AVX-512 kernels of the calibration statistics: the 8 x (16..48) Gram micro-kernel (24 accumulators, one
// broadcast and up to three fused multiply-adds per packed row element) and the f64 sums of squares (exact
// squares, the reference's bits). The target is switched on per function after the includes (see
// convert-avx2.cpp).
#include <immintrin.h>

#include <cstddef>

#include "../../../calib-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
// GCC 12's AVX-512 intrinsic headers trip a false -Wmaybe-uninitialized (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ws {

namespace {

template <int NS>
inline void micro(const float* a, const float* b, size_t stride, size_t k, float* c, size_t ldc, bool first) {
  __m512 acc[kCalibMr][NS];
  for (size_t r = 0; r < kCalibMr; ++r)
    for (int s = 0; s < NS; ++s) acc[r][s] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16 * s);
  for (size_t t = 0; t < k; ++t) {
    __m512 bv[NS];
    for (int s = 0; s < NS; ++s) bv[s] = _mm512_loadu_ps(b + s * stride + 16 * t);
    const float* at = a + 16 * t;
    for (size_t r = 0; r < kCalibMr; ++r) {
      const __m512 ar = _mm512_set1_ps(at[r]);
      for (int s = 0; s < NS; ++s) acc[r][s] = _mm512_fmadd_ps(ar, bv[s], acc[r][s]);
    }
  }
  for (size_t r = 0; r < kCalibMr; ++r)
    for (int s = 0; s < NS; ++s) _mm512_storeu_ps(c + r * ldc + 16 * s, acc[r][s]);
}

void micro_avx512(const float* a, const float* b, size_t stride, int ns, size_t k, float* c, size_t ldc, bool first) {
  if (ns == 3) micro<3>(a, b, stride, k, c, ldc, first);
  else if (ns == 2) micro<2>(a, b, stride, k, c, ldc, first);
  else micro<1>(a, b, stride, k, c, ldc, first);
}

void sumsq_row_avx512(const float* x, size_t n, double* sums) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x + j));
    // v * v is exact in f64, so the fused form rounds exactly as the reference's product then sum.
    _mm512_storeu_pd(sums + j, _mm512_fmadd_pd(v, v, _mm512_loadu_pd(sums + j)));
  }
  for (; j < n; ++j) {
    const double v = x[j];
    sums[j] += v * v;
  }
}

}  // namespace

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

namespace ws {

CalibMicroFn calib_micro_avx512_fn() { return micro_avx512; }
CalibSumsqRowFn calib_sumsq_row_avx512_fn() { return sumsq_row_avx512; }

}  // namespace ws
