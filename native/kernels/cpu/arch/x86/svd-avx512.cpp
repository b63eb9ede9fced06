// SPDX-License-Identifier: MIT
// AVX-512 vector helpers of the QR and SVD kernels (see svd-kernels.h): dot products in four 16-lane accumulators and
// plane rotations, tails through masked loads, with the partial sums of the portable versions (element i into sum
// i mod 64), so both tiers give the same bits; and the batched Jacobi kernel with one matrix per lane. The target is
// switched on per function after the includes.
#include <immintrin.h>

#include <cstddef>
#include <cmath>
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

// Four accumulators: element i goes to vector (i / 16) mod 4, lane i mod 16; then (a0 + a1) + (a2 + a3).
double dot_avx512(const float* x, const float* y, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
  }
  __m512* acc[4] = {&a0, &a1, &a2, &a3};
  for (int v = 0; i < n; i += 16, ++v) {
    const __mmask16 k = n - i >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(n - i);
    *acc[v] = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i), *acc[v], k);
  }
  return hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float max_abs_avx512(const float* x, size_t n) {
  const __m512 big = _mm512_set1_ps(3.4028235e38f);
  __m512 m0 = _mm512_setzero_ps(), m1 = m0;
  __mmask16 bad = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i)), b = _mm512_abs_ps(_mm512_loadu_ps(x + i + 16));
    bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(b, big, _CMP_NLE_UQ);
    m0 = _mm512_max_ps(m0, a);
    m1 = _mm512_max_ps(m1, b);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(n - i);
    const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i));
    bad |= _mm512_cmp_ps_mask(a, big, _CMP_NLE_UQ);
    m0 = _mm512_max_ps(m0, a);
  }
  if (bad) return -1.0f;
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
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
    _mm512_storeu_ps(x + i, _mm512_fnmadd_ps(vs, b, _mm512_mul_ps(vc, a)));
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vs, a, _mm512_mul_ps(vc, b)));
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 a = _mm512_maskz_loadu_ps(k, x + i), b = _mm512_maskz_loadu_ps(k, y + i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_fnmadd_ps(vs, b, _mm512_mul_ps(vc, a)));
    _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(vs, a, _mm512_mul_ps(vc, b)));
  }
}

void frot_avx512(float* x, float* y, size_t n, float a, float b) {
  const __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 p = _mm512_loadu_ps(x + i), q = _mm512_loadu_ps(y + i);
    _mm512_storeu_ps(x + i, _mm512_fnmadd_ps(va, q, p));
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(vb, p, q));
  }
  if (i < n) {
    const __mmask16 k = tail_mask(n - i);
    const __m512 p = _mm512_maskz_loadu_ps(k, x + i), q = _mm512_maskz_loadu_ps(k, y + i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_fnmadd_ps(va, q, p));
    _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(vb, p, q));
  }
}

// (a0 + a1) + (a2 + a3): four FMA chains (index mod 4), as in jacobi_serial.
inline __m512 sum4(const __m512* a) { return _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])); }

// Lane-wise dot of x and y (l vectors each) in four chains, r mod 4.
inline __m512 dot4(const float* x, const float* y, size_t l) {
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  size_t r = 0;
  for (; r + 4 <= l; r += 4)
    for (int u = 0; u < 4; ++u)
      a[u] = _mm512_fmadd_ps(_mm512_loadu_ps(x + (r + u) * 16), _mm512_loadu_ps(y + (r + u) * 16), a[u]);
  for (int u = 0; r < l; ++r, ++u) a[u] = _mm512_fmadd_ps(_mm512_loadu_ps(x + r * 16), _mm512_loadu_ps(y + r * 16), a[u]);
  return sum4(a);
}

// Rotation parameters for 16 lanes, all in f32 (see jacobi_serial in svd.cpp): from the dot of the stored rows gh,
// the squared norms ni, nj and the scales di, dj: the lanes to rotate, the fast-rotation factors fa, fb, and the
// updated squared norms ni - t g, nj + t g and scales c di, c dj.
inline __mmask16 rotation16(__m512 gh, __m512 ni, __m512 nj, __m512 di, __m512 dj, float tol, float tiny, __m512* fa,
                            __m512* fb, __m512* ni2, __m512* nj2, __m512* di2, __m512* dj2) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 g = _mm512_mul_ps(_mm512_mul_ps(gh, di), dj);
  __mmask16 m = _mm512_cmp_ps_mask(ni, _mm512_set1_ps(tiny), _CMP_GE_OQ) & _mm512_cmp_ps_mask(nj, _mm512_set1_ps(tiny), _CMP_GE_OQ);
  const __m512 sq = _mm512_mul_ps(_mm512_sqrt_ps(ni), _mm512_sqrt_ps(nj));
  m &= _mm512_cmp_ps_mask(_mm512_abs_ps(g), _mm512_mul_ps(_mm512_set1_ps(tol), sq), _CMP_GT_OQ);
  if (!m) return 0;
  const __m512 zeta = _mm512_div_ps(_mm512_sub_ps(nj, ni), _mm512_mul_ps(_mm512_set1_ps(2.0f), g));
  const __m512 az = _mm512_abs_ps(zeta);
  const __m512 sign = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(zeta, _mm512_setzero_ps(), _CMP_GE_OQ), _mm512_set1_ps(-1.0f), one);
  const __m512 t_small = _mm512_div_ps(sign, _mm512_add_ps(az, _mm512_sqrt_ps(_mm512_add_ps(one, _mm512_mul_ps(zeta, zeta)))));
  const __m512 t_big = _mm512_div_ps(_mm512_set1_ps(0.5f), zeta);
  const __m512 t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(az, _mm512_set1_ps(1e18f), _CMP_GT_OQ), t_small, t_big);
  const __m512 c = _mm512_div_ps(one, _mm512_sqrt_ps(_mm512_add_ps(one, _mm512_mul_ps(t, t))));
  *fa = _mm512_mul_ps(t, _mm512_div_ps(dj, di));
  *fb = _mm512_mul_ps(t, _mm512_div_ps(di, dj));
  const __m512 tg = _mm512_mul_ps(t, g);
  *ni2 = _mm512_sub_ps(ni, tg);
  *nj2 = _mm512_add_ps(nj, tg);
  *di2 = _mm512_mul_ps(di, c);
  *dj2 = _mm512_mul_ps(dj, c);
  return m;
}

// One element of a fast rotation of 16 lanes (lanes in m only; the others keep their values).
inline void frot_step(float* x, float* y, __m512 fa, __m512 fb, __mmask16 m) {
  const __m512 p = _mm512_loadu_ps(x), q = _mm512_loadu_ps(y);
  _mm512_storeu_ps(x, _mm512_mask3_fnmadd_ps(fa, q, p, m));
  _mm512_storeu_ps(y, _mm512_mask3_fmadd_ps(fb, p, q, m));
}

// Rows times f lane by lane (lanes in m only).
inline void scale_rows(float* x, size_t n, __m512 f, __mmask16 m) {
  for (size_t r = 0; r < n; ++r) _mm512_mask_storeu_ps(x + r * 16, m, _mm512_mul_ps(_mm512_loadu_ps(x + r * 16), f));
}

int jacobi16_avx512(size_t k, size_t l, float* w, float* jt, float tol, float tiny, int max_sweeps, int ge) {
  const __m512 glo = _mm512_set1_ps(std::ldexp(1.0f, -ge)), ghi = _mm512_set1_ps(std::ldexp(1.0f, ge));
  std::memset(jt, 0, k * k * 16 * sizeof(float));
  for (size_t i = 0; i < k; ++i) _mm512_storeu_ps(jt + (i * k + i) * 16, _mm512_set1_ps(1.0f));
  std::vector<float> nrm(k * 16), dv(k * 16, 1.0f);
  const __m512 one = _mm512_set1_ps(1.0f);
  auto fold = [&]() {
    for (size_t i = 0; i < k; ++i) {
      const __m512 d = _mm512_loadu_ps(&dv[i * 16]);
      const __mmask16 m = _mm512_cmp_ps_mask(d, one, _CMP_NEQ_UQ);
      if (!m) continue;
      scale_rows(w + i * l * 16, l, d, m);
      scale_rows(jt + i * k * 16, k, d, m);
      _mm512_storeu_ps(&dv[i * 16], one);
    }
  };
  auto guard = [&](size_t i) {
    const __m512 d = _mm512_loadu_ps(&dv[i * 16]);
    const __mmask16 m = _mm512_cmp_ps_mask(d, glo, _CMP_LT_OQ);
    if (!m) return;
    scale_rows(w + i * l * 16, l, glo, m);
    scale_rows(jt + i * k * 16, k, glo, m);
    _mm512_mask_storeu_ps(&dv[i * 16], m, _mm512_mul_ps(d, ghi));
  };
  for (int sweep = 1; sweep <= max_sweeps; ++sweep) {
    fold();
    for (size_t i = 0; i < k; ++i) _mm512_storeu_ps(&nrm[i * 16], dot4(w + i * l * 16, w + i * l * 16, l));
    __mmask16 any = 0;
    for (size_t i = 0; i + 1 < k; ++i)
      for (size_t j = i + 1; j < k; ++j) {
        float* wi = w + i * l * 16;
        float* wj = w + j * l * 16;
        const __m512 g = dot4(wi, wj, l);
        __m512 fa, fb, ni, nj, di, dj;
        const __mmask16 m = rotation16(g, _mm512_loadu_ps(&nrm[i * 16]), _mm512_loadu_ps(&nrm[j * 16]),
                                       _mm512_loadu_ps(&dv[i * 16]), _mm512_loadu_ps(&dv[j * 16]), tol, tiny, &fa, &fb,
                                       &ni, &nj, &di, &dj);
        if (!m) continue;
        any |= m;
        for (size_t r = 0; r < l; ++r) frot_step(wi + r * 16, wj + r * 16, fa, fb, m);
        _mm512_mask_storeu_ps(&nrm[i * 16], m, ni);
        _mm512_mask_storeu_ps(&nrm[j * 16], m, nj);
        _mm512_mask_storeu_ps(&dv[i * 16], m, di);
        _mm512_mask_storeu_ps(&dv[j * 16], m, dj);
        float* ji = jt + i * k * 16;
        float* jj = jt + j * k * 16;
        for (size_t r = 0; r < k; ++r) frot_step(ji + r * 16, jj + r * 16, fa, fb, m);
        guard(i);
        guard(j);
      }
    if (!any) {
      fold();
      return sweep;
    }
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
  static const SvdOps ops = {dot_avx512, axpy_avx512, rot_avx512, frot_avx512, max_abs_avx512, jacobi16_avx512};
  return cpu_features().avx512f ? &ops : nullptr;
}

}  // namespace ws
