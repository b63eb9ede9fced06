// SPDX-License-Identifier: MIT
// AVX-512 GEMM micro-kernel: an 8 x 48 tile of C from an A block packed [k][8] and a B panel packed [k][48], both
// contiguous so that a tile's operands stay in L1 for a k-panel; c = fma(a, b, c) in k order per element, the same
// chain as the scalar reference. The target is switched on per function after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cstddef>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ws {

void gemm_micro_8x48_avx512(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first) {
  __m512 acc[8][3];
  for (int r = 0; r < 8; ++r)
    for (int s = 0; s < 3; ++s) acc[r][s] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * ldc + 16 * s);
  for (size_t t = 0; t < k; ++t) {
    const __m512 b0 = _mm512_loadu_ps(b + 48 * t), b1 = _mm512_loadu_ps(b + 48 * t + 16), b2 = _mm512_loadu_ps(b + 48 * t + 32);
    const float* at = a + 8 * t;
    for (int r = 0; r < 8; ++r) {
      const __m512 ar = _mm512_set1_ps(at[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(ar, b2, acc[r][2]);
    }
  }
  for (int r = 0; r < 8; ++r)
    for (int s = 0; s < 3; ++s) _mm512_storeu_ps(c + r * ldc + 16 * s, acc[r][s]);
}

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
