// SPDX-License-Identifier: MIT
// AVX-512 GEMM micro-kernels and packing (see gemm.cpp). A micro-kernel computes an MR x (16 NV) tile of C, MR <= 8,
// NV <= 3, from an A block packed [k][8] and a B sliver packed [k][48]; the last vector's valid columns are a lane
// mask, so edge tiles need no buffer. c = fma(a, b, c) in k order per element, the same chain as the scalar
// reference. The target is switched on per function after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>

#include "../../../gemm-kernels.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ws {

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
  const size_t blocks = (rows + 7) / 8;
  if (ta) {  // element (i, t) at a[t * lda + i]: each t one contiguous run of `rows` values, on its own page when
             // lda is large, so a whole run per t (and a prefetch a few t ahead) rather than a block at a time
    for (size_t t = 0; t < kc; ++t) {
      if (t + 4 < kc)
        for (size_t q = 0; q < rows; q += 16) _mm_prefetch(reinterpret_cast<const char*>(a + (t + 4) * lda + q), _MM_HINT_T0);
      const float* s = a + t * lda;
      for (size_t h = 0; h < blocks; ++h) {
        float* d = dst + h * kc * 8 + 8 * t;
        const size_t valid = rows - 8 * h;
        if (valid >= 8) {
          _mm256_storeu_ps(d, _mm256_loadu_ps(s + 8 * h));
        } else {
          for (size_t i = 0; i < 8; ++i) d[i] = i < valid ? s[8 * h + i] : 0.0f;
        }
      }
    }
    return;
  }
  // element (i, t) at a[i * lda + t]: per block, 8 x 8 transposes, then the k tail one column at a time.
  for (size_t h = 0; h < blocks; ++h) {
    const float* src = a + 8 * h * lda;
    float* d = dst + h * kc * 8;
    const size_t valid = std::min<size_t>(8, rows - 8 * h);
    size_t t = 0;
    if (valid == 8) {
      for (; t + 8 <= kc; t += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lda + t);
        transpose8(r);
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + 8 * (t + j), r[j]);
      }
    }
    for (; t < kc; ++t)
      for (size_t i = 0; i < 8; ++i) d[8 * t + i] = i < valid ? src[i * lda + t] : 0.0f;
  }
}

void gemm_pack_b_avx512(const float* b, size_t ldb, bool tb, size_t cols, size_t kc, float* dst) {
  const size_t slivers = (cols + 47) / 48;
  auto lanes = [](size_t valid) { return static_cast<__mmask16>(valid >= 16 ? 0xFFFF : (1u << valid) - 1); };
  if (!tb) {  // element (t, j) at b[t * ldb + j]: a whole row of `cols` values per t, as for A above
    for (size_t t = 0; t < kc; ++t) {
      if (t + 4 < kc)
        for (size_t q = 0; q < cols; q += 16) _mm_prefetch(reinterpret_cast<const char*>(b + (t + 4) * ldb + q), _MM_HINT_T0);
      for (size_t g = 0; g < slivers; ++g) {
        const float* s = b + t * ldb + 48 * g;
        float* d = dst + g * kc * 48 + 48 * t;
        const size_t valid = cols - 48 * g;
        if (valid >= 48) {
          _mm512_storeu_ps(d, _mm512_loadu_ps(s));
          _mm512_storeu_ps(d + 16, _mm512_loadu_ps(s + 16));
          _mm512_storeu_ps(d + 32, _mm512_loadu_ps(s + 32));
        } else {
          _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(lanes(valid), s));
          _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(valid > 16 ? lanes(valid - 16) : 0, s + 16));
          _mm512_storeu_ps(d + 32, _mm512_maskz_loadu_ps(valid > 32 ? lanes(valid - 32) : 0, s + 32));
        }
      }
    }
    return;
  }
  // element (t, j) at b[j * ldb + t]: per sliver, 8 x 8 transposes of 8 columns, then the tails.
  for (size_t g = 0; g < slivers; ++g) {
    const float* src = b + 48 * g * ldb;
    float* d = dst + g * kc * 48;
    const size_t valid = std::min<size_t>(48, cols - 48 * g);
    size_t t = 0;
    for (; t + 8 <= kc; t += 8) {
      size_t j = 0;
      for (; j + 8 <= valid; j += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (j + i) * ldb + t);
        transpose8(r);
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(d + 48 * (t + q) + j, r[q]);
      }
      for (size_t q = 0; q < 8; ++q)
        for (size_t jj = j; jj < 48; ++jj) d[48 * (t + q) + jj] = jj < valid ? src[jj * ldb + t + q] : 0.0f;
    }
    for (; t < kc; ++t)
      for (size_t j = 0; j < 48; ++j) d[48 * t + j] = j < valid ? src[j * ldb + t] : 0.0f;
  }
}

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
