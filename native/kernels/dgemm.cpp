// SPDX-License-Identifier: MIT
// The packed GEMM driver of the factorizations (factor-kernels.h) and dgemm (factor.h). A packed in blocks of 8 rows
// ([k][8], negated when the update subtracts: exact), B in panels of nr columns ([k][nr]), both once; then k-panels
// (192 for f32, 128 for f64) and column panels, and in each a parallel loop over pairs of row blocks running the
// 8 x nr micro-kernel (AVX-512, AVX2 or portable; all compute the same fma chains), each B panel serving both row
// blocks of a chunk. Edge tiles go through a small buffer. Chunks depend only on the shape, so results do not
// depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>

#include "factor-kernels.h"
#include "gemm-kernels.h"
#include "weightsmith/cpu.h"
#include "weightsmith/factor.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

template <typename T>
struct Tile;
template <>
struct Tile<float> {
  static constexpr size_t kNr = 48, kNc = 1536, kKc = 192;
};
template <>
struct Tile<double> {
  static constexpr size_t kNr = 24, kNc = 768, kKc = 128;
};

template <typename T>
void micro_portable(const T* a, const T* b, size_t k, T* c, size_t ldc, bool first) {
  constexpr size_t nr = Tile<T>::kNr;
  for (size_t r = 0; r < kFactorMr; ++r)
    for (size_t q = 0; q < nr; ++q) {
      T acc = first ? T(0) : c[r * ldc + q];
      for (size_t t = 0; t < k; ++t) acc = std::fma(a[t * kFactorMr + r], b[t * nr + q], acc);
      c[r * ldc + q] = acc;
    }
}

#if defined(__x86_64__)
// The full 8 x 48 tile of sgemm's AVX-512 kernels (all 16 lanes of the last vector valid).
void sgemm_micro_8x48_avx512(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first) {
  gemm_micro_avx512(8, 3)(a, b, k, c, ldc, first, 0xFFFFu);
}
#endif

FactorMicroFn<float> best_micro(float*) {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512) return sgemm_micro_8x48_avx512;
  if (simd_level() >= SimdLevel::kAvx2)
    if (auto fn = sgemm_micro_avx2_fn()) return fn;
#endif
  return micro_portable<float>;
}
FactorMicroFn<double> best_micro(double*) {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512)
    if (auto fn = dgemm_micro_avx512_fn()) return fn;
  if (simd_level() >= SimdLevel::kAvx2)
    if (auto fn = dgemm_micro_avx2_fn()) return fn;
#endif
  return micro_portable<double>;
}

}  // namespace

template <typename T>
Status gemm_update(bool ta, bool tb, size_t m, size_t n, size_t k, const T* a, size_t lda, const T* b, size_t ldb,
                   T* c, size_t ldc, bool negate, bool accumulate, bool lower, const std::atomic<bool>* cancel) {
  constexpr size_t kR = kFactorMr, kC = Tile<T>::kNr, kNc = Tile<T>::kNc, kKc = Tile<T>::kKc;
  if (m == 0 || n == 0) return Status::ok();
  if (k == 0) {
    if (!accumulate)
      for (size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return Status::ok();
  }
  const size_t hm = (m + kR - 1) / kR, gn = (n + kC - 1) / kC;
  std::unique_ptr<T[]> ap, bp;
  try {
    ap.reset(new T[hm * k * kR]);
    bp.reset(new T[gn * k * kC]);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "gemm: cannot allocate the packed operands");
  }
  WS_RETURN_IF_ERROR(parallel_for(
      hm + gn,
      [&](size_t s) {
        if (s < hm) {
          T* dst = ap.get() + s * k * kR;
          const size_t first = s * kR, valid = std::min(kR, m - first);
          const T sign = negate ? T(-1) : T(1);  // exact
          if (valid < kR) std::fill(dst, dst + k * kR, T(0));
          if (ta) {
            for (size_t t = 0; t < k; ++t)
              for (size_t i = 0; i < valid; ++i) dst[t * kR + i] = sign * a[t * lda + first + i];
          } else {  // one source row at a time (rows far apart would evict each other)
            for (size_t i = 0; i < valid; ++i) {
              const T* row = a + (first + i) * lda;
              for (size_t t = 0; t < k; ++t) dst[t * kR + i] = sign * row[t];
            }
          }
        } else {
          const size_t g = s - hm;
          T* dst = bp.get() + g * k * kC;
          const size_t first = g * kC, valid = std::min(kC, n - first);
          if (!tb) {
            for (size_t t = 0; t < k; ++t) {
              std::memcpy(dst + t * kC, b + t * ldb + first, valid * sizeof(T));
              std::fill(dst + t * kC + valid, dst + (t + 1) * kC, T(0));
            }
          } else {
            if (valid < kC) std::fill(dst, dst + k * kC, T(0));
            for (size_t j = 0; j < valid; ++j) {
              const T* row = b + (first + j) * ldb;
              for (size_t t = 0; t < k; ++t) dst[t * kC + j] = row[t];
            }
          }
        }
        return Status::ok();
      },
      cancel));
  const FactorMicroFn<T> micro = best_micro(static_cast<T*>(nullptr));
  constexpr size_t kRowsPerChunk = 2;  // blocks of 8 rows
  for (size_t j0 = 0; j0 < n; j0 += kNc) {
    const size_t g_begin = j0 / kC, g_end = std::min(gn, (j0 + kNc) / kC);
    for (size_t k0 = 0; k0 < k; k0 += kKc) {
      const size_t kc = std::min(kKc, k - k0);
      const bool first = k0 == 0 && !accumulate;
      WS_RETURN_IF_ERROR(parallel_for(
          chunk_count(hm, kRowsPerChunk),
          [&](size_t ch) {
            T tmp[kR * kC];
            for (size_t g = g_begin; g < g_end; ++g) {
              const size_t col0 = g * kC, cols = std::min(n - col0, kC);
              const T* bptr = bp.get() + (g * k + k0) * kC;
              for (size_t h = ch * kRowsPerChunk; h < hm && h < (ch + 1) * kRowsPerChunk; ++h) {
                const size_t row0 = h * kR, rows = std::min(m - row0, kR);
                if (lower && col0 >= row0 + kR) continue;
                const T* aptr = ap.get() + (h * k + k0) * kR;
                T* cptr = c + row0 * ldc + col0;
                if (rows == kR && cols == kC) {
                  micro(aptr, bptr, kc, cptr, ldc, first);
                  continue;
                }
                if (!first) {
                  std::fill(tmp, tmp + kR * kC, T(0));
                  for (size_t r = 0; r < rows; ++r) std::memcpy(tmp + r * kC, cptr + r * ldc, cols * sizeof(T));
                }
                micro(aptr, bptr, kc, tmp, kC, first);
                for (size_t r = 0; r < rows; ++r) std::memcpy(cptr + r * ldc, tmp + r * kC, cols * sizeof(T));
              }
            }
            return Status::ok();
          },
          cancel));
    }
  }
  return Status::ok();
}

template Status gemm_update<float>(bool, bool, size_t, size_t, size_t, const float*, size_t, const float*, size_t,
                                   float*, size_t, bool, bool, bool, const std::atomic<bool>*);
template Status gemm_update<double>(bool, bool, size_t, size_t, size_t, const double*, size_t, const double*, size_t,
                                    double*, size_t, bool, bool, bool, const std::atomic<bool>*);

Status dgemm(bool ta, bool tb, size_t m, size_t n, size_t k, const double* a, const double* b, double* c,
             const std::atomic<bool>* cancel) {
  return gemm_update<double>(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, c, n, false, false, false, cancel);
}

Status dgemm_ref(bool ta, bool tb, size_t m, size_t n, size_t k, const double* a, const double* b, double* c) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (size_t t = 0; t < k; ++t)
        acc = std::fma(ta ? a[t * m + i] : a[i * k + t], tb ? b[j * k + t] : b[t * n + j], acc);
      c[i * n + j] = acc;
    }
  return Status::ok();
}

}  // namespace ws
