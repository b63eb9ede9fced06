// SPDX-License-Identifier: MIT
// sgemm (see gemm.h). With AVX-512: its own packing and 8 x 48 micro-kernel (sgemm_avx512 below). Otherwise A packed
// in slivers of 16 rows ([k][16]), B in slivers of 16 columns ([k][16]), both once;
// then panels of 768 columns x 256 k, and in each a parallel loop over row slivers whose 8-row halves run the
// register-tiled micro-kernel of the calibration statistics (8 x up to 48, FMA chains in k order; calib-kernels.h)
// on up to three column slivers at a time. Edge tiles go through a small buffer. Chunks are row slivers, so the
// result does not depend on the thread count.
#include "weightsmith/gemm.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "calib-kernels.h"
#include "weightsmith/checked.h"
#include "weightsmith/cpu.h"
#include "weightsmith/thread-pool.h"

namespace ws {

void gemm_micro_8x48_avx512(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first);

namespace {

constexpr size_t kS = kCalibSliver;  // 16
constexpr size_t kNc = 768;          // columns per panel (24 slivers)
constexpr size_t kKc = 256;          // k per panel

inline float a_at(const float* a, bool ta, size_t m, size_t k, size_t i, size_t t) { return ta ? a[t * m + i] : a[i * k + t]; }
inline float b_at(const float* b, bool tb, size_t n, size_t k, size_t t, size_t j) { return tb ? b[j * k + t] : b[t * n + j]; }

// The portable micro-kernel with the same arithmetic as the SIMD ones: one fma chain per element, in k order.
void micro_fma(const float* a, const float* b, size_t stride, int ns, size_t k, float* c, size_t ldc, bool first) {
  const size_t q_end = static_cast<size_t>(ns) * kS;
  for (size_t r = 0; r < kCalibMr; ++r) {
    for (size_t q = 0; q < q_end; ++q) {
      const float* bs = b + (q / kS) * stride + q % kS;
      float acc = first ? 0.0f : c[r * ldc + q];
      for (size_t t = 0; t < k; ++t) acc = std::fma(a[t * kS + r], bs[t * kS], acc);
      c[r * ldc + q] = acc;
    }
  }
}

CalibMicroFn best_micro() {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512)
    if (CalibMicroFn fn = calib_micro_avx512_fn()) return fn;
  if (simd_level() >= SimdLevel::kAvx2)
    if (CalibMicroFn fn = calib_micro_avx2_fn()) return fn;
#endif
  return micro_fma;
}

// The AVX-512 path: A packed in blocks of 8 rows ([k][8]), B in panels of 48 columns ([k][48]), k-panels of 192
// (a tile's operands, 6 + 36 KiB, mostly in L1) and column panels of 1536; chunks are pairs of 8-row blocks.
Status sgemm_avx512(bool ta, bool tb, size_t m, size_t n, size_t k, const float* a, const float* b, float* c,
                    const std::atomic<bool>* cancel) {
  constexpr size_t kR = 8, kC = 48, kKc512 = 192, kNc512 = 1536;
  const size_t hm = (m + kR - 1) / kR, gn = (n + kC - 1) / kC;
  std::unique_ptr<float[]> ap, bp;
  try {
    ap.reset(new float[hm * k * kR]);
    bp.reset(new float[gn * k * kC]);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "sgemm: cannot allocate the packed operands");
  }
  WS_RETURN_IF_ERROR(parallel_for(
      hm + gn,
      [&](size_t s) {
        if (s < hm) {
          float* dst = ap.get() + s * k * kR;
          const size_t first = s * kR, valid = std::min(kR, m - first);
          for (size_t t = 0; t < k; ++t)
            for (size_t i = 0; i < kR; ++i) dst[t * kR + i] = i < valid ? a_at(a, ta, m, k, first + i, t) : 0.0f;
        } else {
          const size_t g = s - hm;
          float* dst = bp.get() + g * k * kC;
          const size_t first = g * kC, valid = std::min(kC, n - first);
          for (size_t t = 0; t < k; ++t) {
            if (!tb) {
              std::memcpy(dst + t * kC, b + t * n + first, valid * sizeof(float));
              if (valid < kC) std::memset(dst + t * kC + valid, 0, (kC - valid) * sizeof(float));
            } else {
              for (size_t j = 0; j < kC; ++j) dst[t * kC + j] = j < valid ? b[(first + j) * k + t] : 0.0f;
            }
          }
        }
        return Status::ok();
      },
      cancel));
  constexpr size_t kRowsPerChunk = 2;  // blocks of 8 rows
  for (size_t j0 = 0; j0 < n; j0 += kNc512) {
    const size_t g_begin = j0 / kC, g_end = std::min(gn, (j0 + kNc512) / kC);
    for (size_t k0 = 0; k0 < k; k0 += kKc512) {
      const size_t kc = std::min(kKc512, k - k0);
      const bool first = k0 == 0;
      WS_RETURN_IF_ERROR(parallel_for(
          chunk_count(hm, kRowsPerChunk),
          [&](size_t ch) {
            float tmp[kR * kC];
            for (size_t g = g_begin; g < g_end; ++g) {
              const float* bptr = bp.get() + (g * k + k0) * kC;
              const size_t col0 = g * kC, cols = std::min(n - col0, kC);
              for (size_t h = ch * kRowsPerChunk; h < hm && h < (ch + 1) * kRowsPerChunk; ++h) {
                const float* aptr = ap.get() + (h * k + k0) * kR;
                const size_t row0 = h * kR, rows = std::min(m - row0, kR);
                float* cptr = c + row0 * n + col0;
                if (rows == kR && cols == kC) {
                  gemm_micro_8x48_avx512(aptr, bptr, kc, cptr, n, first);
                  continue;
                }
                if (!first) {
                  std::memset(tmp, 0, sizeof tmp);
                  for (size_t r = 0; r < rows; ++r) std::memcpy(tmp + r * kC, cptr + r * n, cols * sizeof(float));
                }
                gemm_micro_8x48_avx512(aptr, bptr, kc, tmp, kC, first);
                for (size_t r = 0; r < rows; ++r) std::memcpy(cptr + r * n, tmp + r * kC, cols * sizeof(float));
              }
            }
            return Status::ok();
          },
          cancel));
    }
  }
  return Status::ok();
}

}  // namespace

Status sgemm_ref(bool ta, bool tb, size_t m, size_t n, size_t k, const float* a, const float* b, float* c) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (size_t t = 0; t < k; ++t) acc = std::fma(a_at(a, ta, m, k, i, t), b_at(b, tb, n, k, t, j), acc);
      c[i * n + j] = acc;
    }
  return Status::ok();
}

Status sgemm(bool ta, bool tb, size_t m, size_t n, size_t k, const float* a, const float* b, float* c,
             const std::atomic<bool>* cancel) {
  if (m == 0 || n == 0) return Status::ok();
  if (k == 0) {
    std::memset(c, 0, m * n * sizeof(float));
    return Status::ok();
  }
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512) return sgemm_avx512(ta, tb, m, n, k, a, b, c, cancel);
#endif
  const size_t gm = (m + kS - 1) / kS, gn = (n + kS - 1) / kS;
  std::vector<float> ap, bp;
  try {
    ap.resize(gm * k * kS);
    bp.resize(gn * k * kS);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "sgemm: cannot allocate the packed operands");
  }
  // Packing: a sliver per chunk, reading the source along its rows (16 contiguous values per k when the sliver's
  // index is the source's inner dimension, one row at a time otherwise).
  auto pack = [&](const float* src, bool inner, size_t count, size_t ld, size_t sliver, float* dst) {
    const size_t first = sliver * kS, valid = std::min(kS, count - first);
    if (inner) {  // element (t, q) at src[t * ld + q]
      for (size_t t = 0; t < k; ++t) {
        std::memcpy(dst + t * kS, src + t * ld + first, valid * sizeof(float));
        if (valid < kS) std::memset(dst + t * kS + valid, 0, (kS - valid) * sizeof(float));
      }
    } else {  // element (t, q) at src[q * ld + t]
      if (valid < kS) std::memset(dst, 0, k * kS * sizeof(float));
      for (size_t q = 0; q < valid; ++q) {
        const float* row = src + (first + q) * ld;
        for (size_t t = 0; t < k; ++t) dst[t * kS + q] = row[t];
      }
    }
  };
  WS_RETURN_IF_ERROR(parallel_for(
      gm + gn,
      [&](size_t s) {
        if (s < gm) pack(a, ta, m, ta ? m : k, s, ap.data() + s * k * kS);
        else pack(b, !tb, n, tb ? k : n, s - gm, bp.data() + (s - gm) * k * kS);
        return Status::ok();
      },
      cancel));
  const CalibMicroFn micro = best_micro();
  const size_t stride = k * kS;
  for (size_t j0 = 0; j0 < n; j0 += kNc) {
    const size_t s_begin = j0 / kS, s_end = std::min(gn, (j0 + kNc) / kS + ((j0 + kNc) % kS ? 1 : 0));
    for (size_t k0 = 0; k0 < k; k0 += kKc) {
      const size_t kc = std::min(kKc, k - k0);
      const bool first = k0 == 0;
      WS_RETURN_IF_ERROR(parallel_for(
          gm,
          [&](size_t g) {
            float tmp[kCalibMr * 3 * kS];
            for (size_t s0 = s_begin; s0 < s_end; s0 += 3) {
              const int ns = static_cast<int>(std::min<size_t>(3, s_end - s0));
              const size_t col0 = s0 * kS, cols = std::min(n - col0, static_cast<size_t>(ns) * kS);
              const float* bptr = bp.data() + s0 * stride + k0 * kS;
              for (size_t half = 0; half < 2; ++half) {
                const size_t row0 = g * kS + half * kCalibMr;
                if (row0 >= m) break;
                const size_t rows = std::min(m - row0, kCalibMr);
                const float* aptr = ap.data() + g * stride + k0 * kS + half * kCalibMr;
                float* cptr = c + row0 * n + col0;
                if (rows == kCalibMr && cols == static_cast<size_t>(ns) * kS) {
                  micro(aptr, bptr, stride, ns, kc, cptr, n, first);
                  continue;
                }
                const size_t ldt = static_cast<size_t>(ns) * kS;
                if (!first) {
                  std::memset(tmp, 0, sizeof tmp);
                  for (size_t r = 0; r < rows; ++r) std::memcpy(tmp + r * ldt, cptr + r * n, cols * sizeof(float));
                }
                micro(aptr, bptr, stride, ns, kc, tmp, ldt, first);
                for (size_t r = 0; r < rows; ++r) std::memcpy(cptr + r * n, tmp + r * ldt, cols * sizeof(float));
              }
            }
            return Status::ok();
          },
          cancel));
    }
  }
  return Status::ok();
}

}  // namespace ws
