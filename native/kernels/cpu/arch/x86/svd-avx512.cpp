// SPDX-License-Identifier: MIT
// AVX-512 vector helpers of the QR and SVD kernels (see svd-kernels.h): 16-lane dot products and plane rotations,
// tails through masked loads, the same lane assignment as the portable versions (lane = index mod 16) so both
// tiers give the same partial sums. The target is switched on per function after the includes.
#include <immintrin.h>

#include <cstddef>

#include "../../../svd-kernels.h"
#include "weightsmith/cpu.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#endif

namespace ws {

namespace {

inline __mmask16 tail_mask(size_t r) { return static_cast<__mmask16>((1u << r) - 1u); }

inline double hsum(__m512 v) {
  alignas(64) float l[16];
  _mm512_store_ps(l, v);
  double s = 0.0;
  for (int i = 0; i < 16; ++i) s += l[i];
  return s;
}

double dot_avx512(const float* x, const float* y, size_t n) {
  __m512 acc = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc);
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    acc = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i), acc, k);
  }
  return hsum(acc);
}

void axpy_avx512(float* y, const float* x, size_t n, float alpha) {
  const __m512 a = _mm512_set1_ps(alpha);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
  }
}

void rot_avx512(float* x, float* y, size_t n, float c, float s) {
  const __m512 vc = _mm512_set1_ps(c), vs = _mm512_set1_ps(s);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(y + i);
    _mm512_storeu_ps(x + i, _mm512_fmadd_ps(vc, a, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(vs, b))));
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, a, _mm512_mul_ps(vc, b)));
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 a = _mm512_maskz_loadu_ps(k, x + i), b = _mm512_maskz_loadu_ps(k, y + i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_fmadd_ps(vc, a, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(vs, b))));
    _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(vs, a, _mm512_mul_ps(vc, b)));
  }
}

void rot_norms_avx512(float* x, float* y, size_t n, float c, float s, double* nx, double* ny) {
  const __m512 vc = _mm512_set1_ps(c), vs = _mm512_set1_ps(s);
  __m512 ax = _mm512_setzero_ps(), ay = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(y + i);
    const __m512 p = _mm512_fmadd_ps(vc, a, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(vs, b)));
    const __m512 q = _mm512_fmadd_ps(vs, a, _mm512_mul_ps(vc, b));
    _mm512_storeu_ps(x + i, p);
    _mm512_storeu_ps(y + i, q);
    ax = _mm512_fmadd_ps(p, p, ax);
    ay = _mm512_fmadd_ps(q, q, ay);
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 a = _mm512_maskz_loadu_ps(k, x + i), b = _mm512_maskz_loadu_ps(k, y + i);
    const __m512 p = _mm512_fmadd_ps(vc, a, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(vs, b)));
    const __m512 q = _mm512_fmadd_ps(vs, a, _mm512_mul_ps(vc, b));
    _mm512_mask_storeu_ps(x + i, k, p);
    _mm512_mask_storeu_ps(y + i, k, q);
    ax = _mm512_fmadd_ps(p, p, ax);
    ay = _mm512_fmadd_ps(q, q, ay);
  }
  *nx = hsum(ax);
  *ny = hsum(ay);
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

const SvdOps* svd_ops_avx512() {
  static const SvdOps ops = {dot_avx512, axpy_avx512, rot_avx512, rot_norms_avx512};
  return cpu_features().avx512f ? &ops : nullptr;
}

}  // namespace ws
