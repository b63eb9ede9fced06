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

// gemm-avx512.cpp: the MR x 16 NV micro-kernels (MR 1..8, NV 1..3; mask: the last vector's valid lanes) and the
// packing of A ([kc][8], rows <= 8) and B ([kc][48], cols <= 48, zero-padded).
using GemmMicroFn = void (*)(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first, unsigned mask);
GemmMicroFn gemm_micro_avx512(int mr, int nv);
void gemm_pack_a_avx512(const float* a, size_t lda, bool ta, size_t rows, size_t kc, float* dst);
void gemm_pack_b_avx512(const float* b, size_t ldb, bool tb, size_t cols, size_t kc, float* dst);

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

// The AVX-512 path. C is cut into tiles of up to 32 blocks of 8 rows x 8 slivers of 48 columns, sized from the
// shape alone (at least kMinTiles of them where the shape allows), and each tile is one chunk of a single parallel
// loop that runs the whole k loop itself, in k-panels of kKc: no barrier between panels, and the result does not
// depend on the thread count. Per k-panel a tile packs its rows of A ([kc][8] per block, into a per-thread buffer)
// and, when it spans all rows of C, its columns of B ([kc][48] per sliver); otherwise B is packed once, up front.
// Then every (block, sliver) pair runs the MR x 16 NV micro-kernel, the edge tiles with fewer rows and a lane mask.
Status sgemm_avx512(bool ta, bool tb, size_t m, size_t n, size_t k, const float* a, const float* b, float* c,
                    const std::atomic<bool>* cancel) {
  constexpr size_t kR = 8, kC = 48, kKc = 256, kMaxRg = 32, kMaxCg = 8, kMinTiles = 16;
  const size_t hm = (m + kR - 1) / kR, gn = (n + kC - 1) / kC;
  size_t rg = std::min(hm, kMaxRg), cg = std::min(gn, kMaxCg);
  auto tiles = [&] { return chunk_count(hm, rg) * chunk_count(gn, cg); };
  const bool b_local = rg == hm;  // one row of tiles: each tile packs its own part of B, once
  while (tiles() < kMinTiles) {
    const bool rows_split = !b_local && rg > 4 && rg * kR >= cg * kC;
    if (rows_split) rg = (rg + 1) / 2;
    else if (cg > 1) cg = (cg + 1) / 2;
    else if (!b_local && rg > 1) rg = (rg + 1) / 2;
    else break;
  }
  const size_t ntr = chunk_count(hm, rg), ntc = chunk_count(gn, cg);
  (void)ntr;
  std::unique_ptr<float[]> bp;
  if (!b_local) {
    try {
      bp.reset(new float[gn * k * kC]);
    } catch (const std::bad_alloc&) {
      return Status(Code::kOutOfMemory, "sgemm: cannot allocate the packed operands");
    }
    WS_RETURN_IF_ERROR(parallel_for(
        gn,
        [&](size_t g) {
          const size_t col0 = g * kC, cols = std::min(kC, n - col0);
          gemm_pack_b_avx512(tb ? b + col0 * k : b + col0, tb ? k : n, tb, cols, k, bp.get() + g * k * kC);
          return Status::ok();
        },
        cancel));
  }
  GemmMicroFn micro[kR][3];
  for (int r = 0; r < 8; ++r)
    for (int v = 0; v < 3; ++v) micro[r][v] = gemm_micro_avx512(r + 1, v + 1);
  return parallel_for(
      ntr * ntc,
      [&](size_t tile) {
        const size_t h0 = tile / ntc * rg, h1 = std::min(hm, h0 + rg);
        const size_t g0 = tile % ntc * cg, g1 = std::min(gn, g0 + cg);
        thread_local std::vector<float> abuf, bbuf;
        abuf.resize(rg * kKc * kR);
        if (b_local) bbuf.resize(cg * kKc * kC);
        for (size_t k0 = 0; k0 < k; k0 += kKc) {
          const size_t kc = std::min(kKc, k - k0);
          for (size_t h = h0; h < h1; ++h) {
            const size_t row0 = h * kR;
            gemm_pack_a_avx512(ta ? a + k0 * m + row0 : a + row0 * k + k0, ta ? m : k, ta, std::min(kR, m - row0), kc,
                               abuf.data() + (h - h0) * kc * kR);
          }
          if (b_local)
            for (size_t g = g0; g < g1; ++g) {
              const size_t col0 = g * kC;
              gemm_pack_b_avx512(tb ? b + col0 * k + k0 : b + k0 * n + col0, tb ? k : n, tb, std::min(kC, n - col0), kc,
                                 bbuf.data() + (g - g0) * kc * kC);
            }
          for (size_t h = h0; h < h1; ++h) {
            const size_t row0 = h * kR, rows = std::min(kR, m - row0);
            const float* aptr = abuf.data() + (h - h0) * kc * kR;
            for (size_t g = g0; g < g1; ++g) {
              const size_t col0 = g * kC, cols = std::min(kC, n - col0), nv = (cols + 15) / 16;
              const unsigned mask = cols % 16 ? (1u << (cols % 16)) - 1 : 0xFFFFu;
              const float* bptr = b_local ? bbuf.data() + (g - g0) * kc * kC : bp.get() + (g * k + k0) * kC;
              micro[rows - 1][nv - 1](aptr, bptr, kc, c + row0 * n + col0, n, k0 == 0, mask);
            }
          }
        }
        return Status::ok();
      },
      cancel);
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
