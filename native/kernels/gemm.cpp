// SPDX-License-Identifier: MIT
// sgemm (see gemm.h). With AVX-512: its own tiling, packing and MR x 48 micro-kernels (sgemm_avx512 below).
// Otherwise A packed in slivers of 16 rows ([k][16]), B in slivers of 16 columns ([k][16]), both once; then panels
// of 768 columns x 256 k, and in each a parallel loop over row slivers whose 8-row halves run the register-tiled
// micro-kernel of the calibration statistics (8 x up to 48, FMA chains in k order; calib-kernels.h) on up to three
// column slivers at a time. Edge tiles go through a small buffer. Chunks are row slivers, so the result does not
// depend on the thread count.
#include "weightsmith/gemm.h"

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "calib-kernels.h"
#include "gemm-kernels.h"
#include "weightsmith/checked.h"
#include "weightsmith/cpu.h"
#include "weightsmith/thread-pool.h"

namespace ws {

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

// A packed operand's memory: large blocks on 2 MiB pages where the system allows (fewer TLB misses), and up to
// kCacheBytes of released blocks kept for the next products, so that repeated products do not pay the kernel for
// zeroed pages on every call.
class PackedBuffer {
 public:
  explicit PackedBuffer(size_t count) {
    if (count == 0) return;
    bytes_ = round_up(count * sizeof(float));
    {
      std::lock_guard<std::mutex> lock(cache_mutex());
      auto& cache = free_blocks();
      auto best = cache.end();
      for (auto it = cache.begin(); it != cache.end(); ++it)
        if (it->first >= bytes_ && (best == cache.end() || it->first < best->first)) best = it;
      if (best != cache.end()) {
        bytes_ = best->first;
        p_ = best->second;
        cached_bytes() -= bytes_;
        cache.erase(best);
        return;
      }
    }
    p_ = allocate(bytes_);
  }
  ~PackedBuffer() {
    if (!p_) return;
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto& cache = free_blocks();
    // Keep this block, dropping the smallest cached ones while the total would exceed the budget.
    while (!cache.empty() && cached_bytes() + bytes_ > kCacheBytes) {
      auto smallest = std::min_element(cache.begin(), cache.end());
      if (smallest->first >= bytes_) break;
      std::free(smallest->second);
      cached_bytes() -= smallest->first;
      cache.erase(smallest);
    }
    if (cached_bytes() + bytes_ <= kCacheBytes) {
      cache.emplace_back(bytes_, p_);
      cached_bytes() += bytes_;
    } else {
      std::free(p_);
    }
  }
  PackedBuffer(const PackedBuffer&) = delete;
  PackedBuffer& operator=(const PackedBuffer&) = delete;
  float* get() const { return p_; }

 private:
  static constexpr size_t kHuge = size_t{2} << 20;
  static constexpr size_t kCacheBytes = size_t{64} << 20;
  static size_t round_up(size_t bytes) { return bytes >= kHuge ? (bytes + kHuge - 1) / kHuge * kHuge : bytes; }
  static float* allocate(size_t bytes) {
#if defined(__linux__)
    if (bytes >= kHuge) {
      void* p = std::aligned_alloc(kHuge, bytes);
      if (p) madvise(p, bytes, MADV_HUGEPAGE);
      return static_cast<float*>(p);
    }
#endif
    return static_cast<float*>(std::malloc(bytes));
  }
  static std::mutex& cache_mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::pair<size_t, float*>>& free_blocks() {
    static auto* v = new std::vector<std::pair<size_t, float*>>();  // never destroyed: used until exit
    return *v;
  }
  static size_t& cached_bytes() {
    static size_t n = 0;
    return n;
  }
  float* p_ = nullptr;
  size_t bytes_ = 0;
};

// The AVX-512 path. C is cut into tiles of up to 16 blocks of 8 rows x 8 slivers of 48 columns, sized from the
// shape alone (at least kMinTiles of them where the shape allows), and each tile is one chunk of a single parallel
// loop that runs the whole k loop itself, in k-panels of kKc: no barrier between panels, and the result does not
// depend on the thread count. A is packed in blocks of 8 rows ([k][8]) and B in slivers of 48 columns ([k][48]):
// an operand is packed once, up front and in parallel, unless the tiles span the other operand's whole extent (one
// row of tiles for B, one column of tiles for A, as in the skinny products of a randomized SVD), in which case each
// tile packs its part of it per k-panel into a per-thread buffer (each element still once, and no large buffer).
// For each k-panel and sliver of the tile, the sliver stays in L1 while the tile's blocks of A stream from L2 through
// the MR x 16 NV micro-kernel; edge tiles use fewer rows and a lane mask, so they need no copy of C.
Status sgemm_avx512(bool ta, bool tb, size_t m, size_t n, size_t k, const float* a, const float* b, float* c,
                    const std::atomic<bool>* cancel) {
  // 128 rows x 384 columns at most: with a power-of-two n the tile's rows of C would otherwise crowd L2 sets.
  constexpr size_t kR = 8, kC = 48, kKc = 192, kMaxRg = 16, kMaxCg = 8, kMinTiles = 16;
  const size_t hm = (m + kR - 1) / kR, gn = (n + kC - 1) / kC;
  size_t rg = std::min(hm, kMaxRg), cg = std::min(gn, kMaxCg);
  auto tiles = [&] { return chunk_count(hm, rg) * chunk_count(gn, cg); };
  // One row of tiles: each tile packs its own part of B, once. One column of tiles: the same for A.
  const bool b_local = rg == hm, a_local = cg == gn && !b_local;
  while (tiles() < kMinTiles) {
    if (!b_local && rg > 4 && (a_local || rg * kR >= cg * kC)) rg = (rg + 1) / 2;
    else if (!a_local && cg > 1) cg = (cg + 1) / 2;
    else if (!b_local && rg > 1) rg = (rg + 1) / 2;
    else break;
  }
  const size_t ntr = chunk_count(hm, rg), ntc = chunk_count(gn, cg);
  PackedBuffer ap(a_local ? 0 : hm * k * kR), bp(b_local ? 0 : gn * k * kC);
  if ((!a_local && !ap.get()) || (!b_local && !bp.get()))
    return Status(Code::kOutOfMemory, "sgemm: cannot allocate the packed operands");
  // Blocks h0..h1 of A / slivers g0..g1 of B, k-panel k0..k0+kc.
  auto pack_a = [&](size_t h0, size_t h1, size_t k0, size_t kc, float* dst) {
    const size_t row0 = h0 * kR;
    gemm_pack_a_avx512(ta ? a + k0 * m + row0 : a + row0 * k + k0, ta ? m : k, ta, std::min(m, h1 * kR) - row0, kc, dst);
  };
  auto pack_b = [&](size_t g0, size_t g1, size_t k0, size_t kc, float* dst) {
    const size_t col0 = g0 * kC;
    gemm_pack_b_avx512(tb ? b + col0 * k + k0 : b + k0 * n + col0, tb ? k : n, tb, std::min(n, g1 * kC) - col0, kc, dst);
  };
  // Up-front packing in chunks of 8 blocks of A / 4 slivers of B (whole rows of a transposed source per k), the
  // larger chunks of B first.
  constexpr size_t kPackA = 8, kPackB = 4;
  const size_t na = a_local ? 0 : chunk_count(hm, kPackA), nb = b_local ? 0 : chunk_count(gn, kPackB);
  if (na + nb > 0)
    WS_RETURN_IF_ERROR(parallel_for(
        na + nb,
        [&](size_t s) {
          if (s < nb) {
            const size_t g0 = s * kPackB;
            pack_b(g0, std::min(gn, g0 + kPackB), 0, k, bp.get() + g0 * k * kC);
          } else {
            const size_t h0 = (s - nb) * kPackA;
            pack_a(h0, std::min(hm, h0 + kPackA), 0, k, ap.get() + h0 * k * kR);
          }
          return Status::ok();
        },
        cancel));
  // k-panels of at most kKc, of equal length up to a multiple of 8 (no short last panel).
  const size_t kpanels = chunk_count(k, kKc), kcp = std::min(kKc, (chunk_count(k, kpanels) + 7) / 8 * 8);
  GemmMicroFn micro[kR][3];
  for (int r = 0; r < 8; ++r)
    for (int v = 0; v < 3; ++v) micro[r][v] = gemm_micro_avx512(r + 1, v + 1);
  return parallel_for(
      ntr * ntc,
      [&](size_t tile) {
        const size_t h0 = tile / ntc * rg, h1 = std::min(hm, h0 + rg);
        const size_t g0 = tile % ntc * cg, g1 = std::min(gn, g0 + cg);
        thread_local std::vector<float> abuf, bbuf;
        if (a_local) abuf.resize(rg * kKc * kR);
        if (b_local) bbuf.resize(cg * kKc * kC);
        for (size_t k0 = 0; k0 < k; k0 += kcp) {
          const size_t kc = std::min(kcp, k - k0);
          if (a_local)
            pack_a(h0, h1, k0, kc, abuf.data());
          if (b_local)
            pack_b(g0, g1, k0, kc, bbuf.data());
          auto run = [&](size_t h, size_t g) {
            const size_t row0 = h * kR, rows = std::min(kR, m - row0);
            const size_t col0 = g * kC, cols = std::min(kC, n - col0), nv = (cols + 15) / 16;
            const unsigned mask = cols % 16 ? (1u << (cols % 16)) - 1 : 0xFFFFu;
            const float* aptr = a_local ? abuf.data() + (h - h0) * kc * kR : ap.get() + (h * k + k0) * kR;
            const float* bptr = b_local ? bbuf.data() + (g - g0) * kc * kC : bp.get() + (g * k + k0) * kC;
            micro[rows - 1][nv - 1](aptr, bptr, kc, c + row0 * n + col0, n, k0 == 0, mask);
          };
          // A sliver of B stays in L1 while the tile's blocks of A stream from L2.
          for (size_t g = g0; g < g1; ++g)
            for (size_t h = h0; h < h1; ++h) run(h, g);
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
