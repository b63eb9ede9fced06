// SPDX-License-Identifier: MIT
// AVX2 + FMA GEMM micro-kernels of the factorizations: the f32 8 x 48 tile as 4 x 16 sub-tiles and the f64 8 x 24
// tile as 4 x 12 sub-tiles (8 or 12 accumulators live), each summed over k in order with c = fma(a, b, c): the
// same chain per element as the scalar reference. The target is switched on per function after the includes.
#include <immintrin.h>

#include <cstddef>

#include "../../../factor-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace ws {
namespace {

void smicro_avx2(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first) {
  for (int r0 = 0; r0 < 8; r0 += 4)
    for (int q0 = 0; q0 < 48; q0 += 16) {
      __m256 acc[4][2];
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 2; ++s)
          acc[r][s] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + (r0 + r) * ldc + q0 + 8 * s);
      for (size_t t = 0; t < k; ++t) {
        const __m256 b0 = _mm256_loadu_ps(b + 48 * t + q0), b1 = _mm256_loadu_ps(b + 48 * t + q0 + 8);
        const float* at = a + 8 * t + r0;
        for (int r = 0; r < 4; ++r) {
          const __m256 ar = _mm256_broadcast_ss(at + r);
          acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
        }
      }
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 2; ++s) _mm256_storeu_ps(c + (r0 + r) * ldc + q0 + 8 * s, acc[r][s]);
    }
}

void dmicro_avx2(const double* a, const double* b, size_t k, double* c, size_t ldc, bool first) {
  for (int r0 = 0; r0 < 8; r0 += 4)
    for (int q0 = 0; q0 < 24; q0 += 12) {
      __m256d acc[4][3];
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 3; ++s)
          acc[r][s] = first ? _mm256_setzero_pd() : _mm256_loadu_pd(c + (r0 + r) * ldc + q0 + 4 * s);
      for (size_t t = 0; t < k; ++t) {
        const __m256d b0 = _mm256_loadu_pd(b + 24 * t + q0), b1 = _mm256_loadu_pd(b + 24 * t + q0 + 4),
                      b2 = _mm256_loadu_pd(b + 24 * t + q0 + 8);
        const double* at = a + 8 * t + r0;
        for (int r = 0; r < 4; ++r) {
          const __m256d ar = _mm256_broadcast_sd(at + r);
          acc[r][0] = _mm256_fmadd_pd(ar, b0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_pd(ar, b1, acc[r][1]);
          acc[r][2] = _mm256_fmadd_pd(ar, b2, acc[r][2]);
        }
      }
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 3; ++s) _mm256_storeu_pd(c + (r0 + r) * ldc + q0 + 4 * s, acc[r][s]);
    }
}

}  // namespace
}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace ws {

FactorMicroFn<float> sgemm_micro_avx2_fn() { return smicro_avx2; }
FactorMicroFn<double> dgemm_micro_avx2_fn() { return dmicro_avx2; }

}  // namespace ws
