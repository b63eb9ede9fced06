// SPDX-License-Identifier: MIT
// AVX2 + FMA Gram micro-kernel of the calibration statistics: the 8 x (16..48) tile as 4 x 16 sub-tiles (8
// accumulators, two B vectors and one broadcast live: 11 of the 16 ymm registers), each summed over the
// token block in token order. The target is switched on per function after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cstddef>

#include "../../../calib-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

namespace ws {

namespace {

inline void micro4x16(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first) {
  __m256 acc[4][2];
  for (int r = 0; r < 4; ++r)
    for (int h = 0; h < 2; ++h) acc[r][h] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + r * ldc + 8 * h);
  for (size_t t = 0; t < k; ++t) {
    const __m256 b0 = _mm256_loadu_ps(b + 16 * t), b1 = _mm256_loadu_ps(b + 16 * t + 8);
    for (int r = 0; r < 4; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + 16 * t + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(c + r * ldc + 8 * h, acc[r][h]);
}

void micro_avx2(const float* a, const float* b, size_t stride, int ns, size_t k, float* c, size_t ldc, bool first) {
  for (size_t r0 = 0; r0 < kCalibMr; r0 += 4)
    for (int s = 0; s < ns; ++s) micro4x16(a + r0, b + s * stride, k, c + r0 * ldc + 16 * s, ldc, first);
}

}  // namespace

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace ws {

CalibMicroFn calib_micro_avx2_fn() { return micro_avx2; }

}  // namespace ws
