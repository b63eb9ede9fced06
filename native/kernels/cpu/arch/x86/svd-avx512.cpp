// SPDX-License-Identifier: MIT
// AVX-512 vector helpers of the QR and SVD kernels (see svd-kernels.h): 16-lane dot products and plane rotations,
// tails through masked loads, the same lane assignment as the portable versions (lane = index mod 16) so both
// tiers give the same partial sums. The target is switched on per function after the includes.
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "../../../svd-kernels.h"
#include "weightsmith/cpu.h"

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

inline __m256 half(__m512 v, int h) {
  return h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)) : _mm512_castps512_ps256(v);
}
inline __m512 join(__m256 lo, __m256 hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}

// Rotation parameters for 16 lanes (see jacobi_serial in svd.cpp): the lanes to rotate, c and s.
inline __mmask16 rotation16(__m512 g, __m512 ni, __m512 nj, double tol, double tiny, __m512* c, __m512* s) {
  __m512d cc[2], ss[2];
  __mmask16 mask = 0;
  const __m512d one = _mm512_set1_pd(1.0), vtol = _mm512_set1_pd(tol), vtiny = _mm512_set1_pd(tiny);
  for (int h = 0; h < 2; ++h) {
    const __m256 gh = half(g, h), nih = half(ni, h), njh = half(nj, h);
    const __m512d gd = _mm512_cvtps_pd(gh), nid = _mm512_cvtps_pd(nih), njd = _mm512_cvtps_pd(njh);
    const __m512d ag = _mm512_abs_pd(gd);
    __mmask8 m = _mm512_cmp_pd_mask(nid, vtiny, _CMP_GE_OQ) & _mm512_cmp_pd_mask(njd, vtiny, _CMP_GE_OQ);
    m &= _mm512_cmp_pd_mask(ag, _mm512_mul_pd(vtol, _mm512_sqrt_pd(_mm512_mul_pd(nid, njd))), _CMP_GT_OQ);
    const __m512d zeta = _mm512_div_pd(_mm512_sub_pd(njd, nid), _mm512_mul_pd(_mm512_set1_pd(2.0), gd));
    const __m512d az = _mm512_abs_pd(zeta);
    const __m512d sign = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(zeta, _mm512_setzero_pd(), _CMP_GE_OQ), _mm512_set1_pd(-1.0), one);
    const __m512d t = _mm512_div_pd(sign, _mm512_add_pd(az, _mm512_sqrt_pd(_mm512_add_pd(one, _mm512_mul_pd(zeta, zeta)))));
    cc[h] = _mm512_div_pd(one, _mm512_sqrt_pd(_mm512_add_pd(one, _mm512_mul_pd(t, t))));
    ss[h] = _mm512_mul_pd(cc[h], t);
    mask |= static_cast<__mmask16>(m) << (8 * h);
  }
  *c = join(_mm512_cvtpd_ps(cc[0]), _mm512_cvtpd_ps(cc[1]));
  *s = join(_mm512_cvtpd_ps(ss[0]), _mm512_cvtpd_ps(ss[1]));
  return mask;
}

int jacobi16_avx512(size_t k, size_t l, float* w, float* jt, double tol, double tiny, int max_sweeps) {
  std::memset(jt, 0, k * k * 16 * sizeof(float));
  for (size_t i = 0; i < k; ++i) _mm512_storeu_ps(jt + (i * k + i) * 16, _mm512_set1_ps(1.0f));
  std::vector<float> nrm(k * 16);
  for (size_t i = 0; i < k; ++i) {
    __m512 acc = _mm512_setzero_ps();
    for (size_t r = 0; r < l; ++r) {
      const __m512 x = _mm512_loadu_ps(w + (i * l + r) * 16);
      acc = _mm512_fmadd_ps(x, x, acc);
    }
    _mm512_storeu_ps(&nrm[i * 16], acc);
  }
  const __m512 zero = _mm512_setzero_ps();
  for (int sweep = 1; sweep <= max_sweeps; ++sweep) {
    __mmask16 any = 0;
    for (size_t i = 0; i + 1 < k; ++i)
      for (size_t j = i + 1; j < k; ++j) {
        float* wi = w + i * l * 16;
        float* wj = w + j * l * 16;
        __m512 g = zero;
        for (size_t r = 0; r < l; ++r) g = _mm512_fmadd_ps(_mm512_loadu_ps(wi + r * 16), _mm512_loadu_ps(wj + r * 16), g);
        __m512 c, s;
        const __mmask16 m = rotation16(g, _mm512_loadu_ps(&nrm[i * 16]), _mm512_loadu_ps(&nrm[j * 16]), tol, tiny, &c, &s);
        if (!m) continue;
        any |= m;
        __m512 ni = zero, nj = zero;
        for (size_t r = 0; r < l; ++r) {
          const __m512 x = _mm512_loadu_ps(wi + r * 16), y = _mm512_loadu_ps(wj + r * 16);
          const __m512 p = _mm512_fmadd_ps(c, x, _mm512_sub_ps(zero, _mm512_mul_ps(s, y)));
          const __m512 q = _mm512_fmadd_ps(s, x, _mm512_mul_ps(c, y));
          _mm512_mask_storeu_ps(wi + r * 16, m, p);
          _mm512_mask_storeu_ps(wj + r * 16, m, q);
          ni = _mm512_fmadd_ps(p, p, ni);
          nj = _mm512_fmadd_ps(q, q, nj);
        }
        _mm512_mask_storeu_ps(&nrm[i * 16], m, ni);
        _mm512_mask_storeu_ps(&nrm[j * 16], m, nj);
        float* ji = jt + i * k * 16;
        float* jj = jt + j * k * 16;
        for (size_t r = 0; r < k; ++r) {
          const __m512 x = _mm512_loadu_ps(ji + r * 16), y = _mm512_loadu_ps(jj + r * 16);
          _mm512_mask_storeu_ps(ji + r * 16, m, _mm512_fmadd_ps(c, x, _mm512_sub_ps(zero, _mm512_mul_ps(s, y))));
          _mm512_mask_storeu_ps(jj + r * 16, m, _mm512_fmadd_ps(s, x, _mm512_mul_ps(c, y)));
        }
      }
    if (!any) return sweep;
  }
  return -1;
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

const SvdOps* svd_ops_avx512() {
  static const SvdOps ops = {dot_avx512, axpy_avx512, rot_avx512, rot_norms_avx512, jacobi16_avx512};
  return cpu_features().avx512f ? &ops : nullptr;
}

}  // namespace ws
