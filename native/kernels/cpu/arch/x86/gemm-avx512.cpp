// SPDX-License-Identifier: MIT
// AVX-512 GEMM micro-kernels and packing (see gemm.cpp). A micro-kernel computes an MR x (16 NV) tile of C, MR <= 8,
// NV <= 3, from an A block packed [k][8] and a B sliver packed [k][48]; the last vector's valid columns are a lane
// mask, so edge tiles need no buffer. c = fma(a, b, c) in k order per element, the same chain as the scalar
// reference. The target is switched on per function after the includes (see convert-avx2.cpp).
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

// Declared again in gemm.cpp.
using GemmMicroFn = void (*)(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first, unsigned mask);
GemmMicroFn gemm_micro_avx512(int mr, int nv);
void gemm_pack_a_avx512(const float* a, size_t lda, bool ta, size_t rows, size_t kc, float* dst);
void gemm_pack_b_avx512(const float* b, size_t ldb, bool tb, size_t cols, size_t kc, float* dst);

namespace {

template <int MR, int NV>
void micro(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first, unsigned mask) {
  const __mmask16 lm = static_cast<__mmask16>(mask);
  __m512 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int s = 0; s < NV; ++s) {
      const float* p = c + r * ldc + 16 * s;
      acc[r][s] = first ? _mm512_setzero_ps() : s == NV - 1 ? _mm512_maskz_loadu_ps(lm, p) : _mm512_loadu_ps(p);
    }
#pragma GCC unroll 4
  for (size_t t = 0; t < k; ++t) {
    __m512 bv[NV];
    for (int s = 0; s < NV; ++s) bv[s] = _mm512_loadu_ps(b + 48 * t + 16 * s);
    const float* at = a + 8 * t;
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(at[r]);
      for (int s = 0; s < NV; ++s) acc[r][s] = _mm512_fmadd_ps(ar, bv[s], acc[r][s]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int s = 0; s < NV; ++s) {
      float* p = c + r * ldc + 16 * s;
      if (s == NV - 1) _mm512_mask_storeu_ps(p, lm, acc[r][s]);
      else _mm512_storeu_ps(p, acc[r][s]);
    }
}

template <int MR>
constexpr GemmMicroFn row(int nv) {
  return nv == 1 ? micro<MR, 1> : nv == 2 ? micro<MR, 2> : micro<MR, 3>;
}

// 8 rows of 8 floats (r[i] = row i) to 8 columns (r[j] = column j).
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, rows 4-7
    u[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
  }
}

}  // namespace

GemmMicroFn gemm_micro_avx512(int mr, int nv) {
  switch (mr) {
    case 1: return row<1>(nv);
    case 2: return row<2>(nv);
    case 3: return row<3>(nv);
    case 4: return row<4>(nv);
    case 5: return row<5>(nv);
    case 6: return row<6>(nv);
    case 7: return row<7>(nv);
    default: return row<8>(nv);
  }
}

void gemm_pack_a_avx512(const float* a, size_t lda, bool ta, size_t rows, size_t kc, float* dst) {
  if (ta) {  // element (i, t) at a[t * lda + i]: 8 contiguous values per t
    if (rows == 8) {
      for (size_t t = 0; t < kc; ++t) _mm256_storeu_ps(dst + 8 * t, _mm256_loadu_ps(a + t * lda));
    } else {
      for (size_t t = 0; t < kc; ++t)
        for (size_t i = 0; i < 8; ++i) dst[8 * t + i] = i < rows ? a[t * lda + i] : 0.0f;
    }
    return;
  }
  // element (i, t) at a[i * lda + t]: 8 x 8 transposes, then the k tail one column at a time.
  size_t t = 0;
  if (rows == 8) {
    for (; t + 8 <= kc; t += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(a + i * lda + t);
      transpose8(r);
      for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + 8 * (t + j), r[j]);
    }
  }
  for (; t < kc; ++t)
    for (size_t i = 0; i < 8; ++i) dst[8 * t + i] = i < rows ? a[i * lda + t] : 0.0f;
}

void gemm_pack_b_avx512(const float* b, size_t ldb, bool tb, size_t cols, size_t kc, float* dst) {
  if (!tb) {  // element (t, j) at b[t * ldb + j]
    const __mmask16 m0 = static_cast<__mmask16>(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    const __mmask16 m1 = static_cast<__mmask16>(cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    const __mmask16 m2 = static_cast<__mmask16>(cols >= 48 ? 0xFFFF : cols <= 32 ? 0 : (1u << (cols - 32)) - 1);
    for (size_t t = 0; t < kc; ++t) {
      const float* s = b + t * ldb;
      float* d = dst + 48 * t;
      _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, s));
      _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + 16));
      _mm512_storeu_ps(d + 32, _mm512_maskz_loadu_ps(m2, s + 32));
    }
    return;
  }
  // element (t, j) at b[j * ldb + t]: 8 x 8 transposes of 8 columns, then the tails.
  size_t t = 0;
  for (; t + 8 <= kc; t += 8) {
    size_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(b + (j + i) * ldb + t);
      transpose8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + 48 * (t + q) + j, r[q]);
    }
    for (size_t q = 0; q < 8; ++q)
      for (size_t jj = j; jj < 48; ++jj) dst[48 * (t + q) + jj] = jj < cols ? b[jj * ldb + t + q] : 0.0f;
  }
  for (; t < kc; ++t)
    for (size_t j = 0; j < 48; ++j) dst[48 * t + j] = j < cols ? b[j * ldb + t] : 0.0f;
}

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
