// SPDX-License-Identifier: MIT
// AVX-512 f64 GEMM micro-kernel of the factorizations: an 8 x 24 tile of C (24 accumulators, three B vectors and
// one broadcast live) from an A block packed [k][8] and a B panel packed [k][24]; c = fma(a, b, c) in k order per
// element, the same chain as the scalar reference. The target is switched on per function after the includes.
#include <immintrin.h>

#include <cstddef>

#include "../../../factor-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma")
#endif

namespace ws {
namespace {

void dmicro_avx512(const double* a, const double* b, size_t k, double* c, size_t ldc, bool first) {
  __m512d acc[8][3];
  for (int r = 0; r < 8; ++r)
    for (int s = 0; s < 3; ++s) acc[r][s] = first ? _mm512_setzero_pd() : _mm512_loadu_pd(c + r * ldc + 8 * s);
  for (size_t t = 0; t < k; ++t) {
    const __m512d b0 = _mm512_loadu_pd(b + 24 * t), b1 = _mm512_loadu_pd(b + 24 * t + 8),
                  b2 = _mm512_loadu_pd(b + 24 * t + 16);
    const double* at = a + 8 * t;
    for (int r = 0; r < 8; ++r) {
      const __m512d ar = _mm512_set1_pd(at[r]);
      acc[r][0] = _mm512_fmadd_pd(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_pd(ar, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_pd(ar, b2, acc[r][2]);
    }
  }
  for (int r = 0; r < 8; ++r)
    for (int s = 0; s < 3; ++s) _mm512_storeu_pd(c + r * ldc + 8 * s, acc[r][s]);
}

}  // namespace
}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace ws {

FactorMicroFn<double> dgemm_micro_avx512_fn() { return dmicro_avx512; }

}  // namespace ws
