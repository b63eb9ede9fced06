// SPDX-License-Identifier: MIT
// syrk, cholesky, cholesky_inverse and trsm (factor.h). The heavy parts run on the packed GEMM driver
// (gemm_update, kernels/dgemm.cpp); the rest is recursive blocking down to leaves of at most 32 rows or columns,
// which use plain multiply / subtract / divide / sqrt (no fma, so the same arithmetic on every SIMD tier) and are
// laid out so that the compiler vectorizes their inner loops. Chunks depend only on the shapes.
//
// cholesky: A = [A11; A21 A22] -> L11 = chol(A11); L21 = A21 L11^-T (right TRSM, itself recursive: half the
// columns, a GEMM update of the other half, the other half); A22 -= L21 L21ᵀ (lower-triangle GEMM); L22 =
// chol(A22). trsm: every case is turned into a left lower solve L Y = C by copying op(A) (reversing the index order
// when it is upper) and B (transposed for a right solve), solved by the same recursion. cholesky_inverse: X = L^-1
// (left solves with blocks of columns of the identity, each on the trailing rows only and skipping the zero columns
// of the lower-triangular result), then Xᵀ X by block rows, each a GEMM over the non-zero rows of X only.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "factor-kernels.h"
#include "weightsmith/factor.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

constexpr size_t kLeaf = 16;     // the largest leaf of the recursions
constexpr size_t kRowChunk = 64;  // rows per chunk of a leaf right solve
constexpr size_t kColChunk = 64;  // columns per chunk of a leaf left solve
constexpr size_t kInvBlock = 256; // block rows of Xᵀ X in cholesky_inverse

// The first half of a recursion: about half of s, a multiple of 16, below s (s > kLeaf).
size_t split(size_t s) { return (s / 2 + 15) / 16 * 16; }

template <typename T>
Status alloc(std::unique_ptr<T[]>& p, size_t n, const char* what) {
  try {
    p.reset(new T[n]);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, std::string(what) + ": cannot allocate the work space");
  }
  return Status::ok();
}

Status non_finite(const char* fn, const char* what, size_t index, size_t cols) {
  return Status(Code::kNonFinite, std::string(fn) + ": " + what + " holds a non-finite value at index " + std::to_string(index) +
                                      " (row " + std::to_string(index / cols) + ", column " + std::to_string(index % cols) + ")")
      .with("index", static_cast<uint64_t>(index));
}

// The first non-finite element (row-major index) of a (rows x cols), over all of it or its lower (column <= row) or
// upper (column >= row) triangle; SIZE_MAX when none.
enum class Region { kAll, kLower, kUpper };
template <typename T>
size_t find_non_finite(const T* a, size_t rows, size_t cols, Region region) {
  for (size_t i = 0; i < rows; ++i) {
    const size_t b = region == Region::kUpper ? i : 0, e = region == Region::kLower ? std::min(cols, i + 1) : cols;
    for (size_t j = b; j < e; ++j)
      if (!std::isfinite(a[i * cols + j])) return i * cols + j;
  }
  return SIZE_MAX;
}

// Mirrors the strict lower triangle of c (n x n) onto the upper one, or swaps the two (an in-place transpose), in
// 32 x 32 tiles copied through local buffers (so that every row of a tile is read or written whole: rows a power of
// two apart share cache sets); a chunk is a row of tiles (the pairs it touches are its own).
template <typename T>
Status tile_pairs(T* c, size_t n, bool swap, const std::atomic<bool>* cancel) {
  constexpr size_t kB = 32;
  return parallel_for(
      chunk_count(n, kB),
      [&](size_t b) {
        T lo[kB * kB], up[kB * kB];
        const size_t i0 = b * kB, ni = std::min(kB, n - i0);
        for (size_t j0 = 0; j0 < i0; j0 += kB) {  // off-diagonal pairs: lower tile (i0, j0), upper tile (j0, i0)
          for (size_t i = 0; i < ni; ++i) std::memcpy(lo + i * kB, c + (i0 + i) * n + j0, kB * sizeof(T));
          if (swap)
            for (size_t j = 0; j < kB; ++j) std::memcpy(up + j * kB, c + (j0 + j) * n + i0, ni * sizeof(T));
          for (size_t j = 0; j < kB; ++j) {
            T* dst = c + (j0 + j) * n + i0;
            for (size_t i = 0; i < ni; ++i) dst[i] = lo[i * kB + j];
          }
          if (swap)
            for (size_t i = 0; i < ni; ++i) {
              T* dst = c + (i0 + i) * n + j0;
              for (size_t j = 0; j < kB; ++j) dst[j] = up[j * kB + i];
            }
        }
        for (size_t i = i0; i < i0 + ni; ++i)  // the diagonal tile
          for (size_t j = i0; j < i; ++j) {
            if (swap) std::swap(c[j * n + i], c[i * n + j]);
            else c[j * n + i] = c[i * n + j];
          }
        return Status::ok();
      },
      cancel);
}

Status not_pd(size_t order) {
  return Status(Code::kNoConvergence, "cholesky: the input is not positive definite (the leading minor of order " +
                                          std::to_string(order) + " is not positive definite)")
      .with("order", static_cast<uint64_t>(order));
}

// ---- cholesky ----

// Factors the diagonal block at (j0, j0) of size s (s <= kLeaf) in place, its earlier updates applied.
template <typename T>
Status chol_leaf(T* l, size_t ld, size_t j0, size_t s) {
  for (size_t j = 0; j < s; ++j) {
    T* rj = l + (j0 + j) * ld + j0;
    T d = rj[j];
    for (size_t t = 0; t < j; ++t) d = d - rj[t] * rj[t];
    if (!(d > T(0)) || !std::isfinite(d)) return not_pd(j0 + j + 1);
    const T p = std::sqrt(d);
    rj[j] = p;
    for (size_t i = j + 1; i < s; ++i) {
      T* ri = l + (j0 + i) * ld + j0;
      T v = ri[j];
      for (size_t t = 0; t < j; ++t) v = v - ri[t] * rj[t];
      ri[j] = v / p;
    }
  }
  return Status::ok();
}

// Solves X L11ᵀ = B in place: X and B the rows [r0, r0 + m2) x columns [c0, c0 + w) of l, L11 its diagonal block
// at (c0, c0).
template <typename T>
Status trsm_right_lt(T* l, size_t ld, size_t r0, size_t m2, size_t c0, size_t w, const std::atomic<bool>* cancel) {
  if (m2 == 0) return Status::ok();
  if (w <= kLeaf) {
    return parallel_for(
        chunk_count(m2, kRowChunk),
        [&](size_t ch) {
          T tmp[kLeaf * kRowChunk];
          const size_t i0 = r0 + ch * kRowChunk, rows = std::min(kRowChunk, r0 + m2 - i0);
          for (size_t i = 0; i < rows; ++i)
            for (size_t j = 0; j < w; ++j) tmp[j * kRowChunk + i] = l[(i0 + i) * ld + c0 + j];
          for (size_t j = 0; j < w; ++j) {
            const T* lj = l + (c0 + j) * ld + c0;
            T* xj = tmp + j * kRowChunk;
            for (size_t t = 0; t < j; ++t) {
              const T f = lj[t];
              const T* xt = tmp + t * kRowChunk;
              for (size_t i = 0; i < rows; ++i) xj[i] = xj[i] - f * xt[i];
            }
            const T p = lj[j];
            for (size_t i = 0; i < rows; ++i) xj[i] = xj[i] / p;
          }
          for (size_t i = 0; i < rows; ++i)
            for (size_t j = 0; j < w; ++j) l[(i0 + i) * ld + c0 + j] = tmp[j * kRowChunk + i];
          return Status::ok();
        },
        cancel);
  }
  const size_t h = split(w);
  WS_RETURN_IF_ERROR(trsm_right_lt(l, ld, r0, m2, c0, h, cancel));
  WS_RETURN_IF_ERROR(gemm_update<T>(false, true, m2, w - h, h, l + r0 * ld + c0, ld, l + (c0 + h) * ld + c0, ld,
                                    l + r0 * ld + c0 + h, ld, true, true, false, cancel));
  return trsm_right_lt(l, ld, r0, m2, c0 + h, w - h, cancel);
}

template <typename T>
Status chol_rec(T* l, size_t ld, size_t j0, size_t s, const std::atomic<bool>* cancel) {
  if (s <= kLeaf) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return Status(Code::kAborted, "The operation was aborted");
    return chol_leaf(l, ld, j0, s);
  }
  const size_t h = split(s), r = s - h;
  WS_RETURN_IF_ERROR(chol_rec(l, ld, j0, h, cancel));
  WS_RETURN_IF_ERROR(trsm_right_lt(l, ld, j0 + h, r, j0, h, cancel));
  T* a21 = l + (j0 + h) * ld + j0;
  WS_RETURN_IF_ERROR(gemm_update<T>(false, true, r, r, h, a21, ld, a21, ld, a21 + h, ld, true, true, true, cancel));
  return chol_rec(l, ld, j0 + h, r, cancel);
}

// ---- left lower solve: L Y = C in place (C n x m, row stride ldc) ----
// lower_rhs: C is the block of rows [row0, row0 + n) of a lower-triangular right-hand side (the identity), so
// columns from row0 + n on are zero and stay zero.
template <typename T>
Status solve_ll(size_t n, const T* l, size_t ld, bool unit, T* c, size_t m, size_t ldc, bool lower_rhs, size_t row0,
                const std::atomic<bool>* cancel) {
  const size_t cols = lower_rhs ? std::min(m, row0 + n) : m;
  if (n == 0 || cols == 0) return Status::ok();
  if (n <= kLeaf) {
    return parallel_for(
        chunk_count(cols, kColChunk),
        [&](size_t ch) {
          const size_t q0 = ch * kColChunk, q1 = std::min(cols, q0 + kColChunk);
          for (size_t j = 0; j < n; ++j) {
            T* cj = c + j * ldc;
            for (size_t t = 0; t < j; ++t) {
              const T f = l[j * ld + t];
              const T* ct = c + t * ldc;
              for (size_t q = q0; q < q1; ++q) cj[q] = cj[q] - f * ct[q];
            }
            if (!unit) {
              const T p = l[j * ld + j];
              for (size_t q = q0; q < q1; ++q) cj[q] = cj[q] / p;
            }
          }
          return Status::ok();
        },
        cancel);
  }
  const size_t h = split(n);
  WS_RETURN_IF_ERROR(solve_ll(h, l, ld, unit, c, m, ldc, lower_rhs, row0, cancel));
  const size_t upd = lower_rhs ? std::min(m, row0 + h) : m;
  WS_RETURN_IF_ERROR(gemm_update<T>(false, false, n - h, upd, h, l + h * ld, ld, c, ldc, c + h * ldc, ldc, true, true,
                                    false, cancel));
  return solve_ll(n - h, l + h * ld + h, ld, unit, c + h * ldc, m, ldc, lower_rhs, row0 + h, cancel);
}

Status singular(const char* fn, size_t i) {
  return Status(Code::kNoConvergence, std::string(fn) + ": the triangular matrix is singular (its diagonal element " +
                                          std::to_string(i) + " is zero)")
      .with("index", static_cast<uint64_t>(i));
}

// The lower-triangular copy (zeros above) of the lower triangle of l, or of the transpose of its upper one.
template <typename T>
void lower_copy(size_t n, const T* l, bool upper, T* dst) {
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) dst[i * n + j] = j > i ? T(0) : (upper ? l[j * n + i] : l[i * n + j]);
}

}  // namespace

// ---- syrk ----

template <typename T>
Status syrk(bool trans, size_t n, size_t k, const T* a, T* c, const std::atomic<bool>* cancel) {
  const size_t bad = find_non_finite(a, trans ? k : n, trans ? n : k, Region::kAll);
  if (bad != SIZE_MAX) return non_finite("syrk", "the input", bad, trans ? n : k);
  const size_t ld = trans ? n : k;
  WS_RETURN_IF_ERROR(gemm_update<T>(trans, !trans, n, n, k, a, ld, a, ld, c, n, false, false, true, cancel));
  return tile_pairs(c, n, false, cancel);
}

template <typename T>
Status syrk_ref(bool trans, size_t n, size_t k, const T* a, T* c) {
  const size_t bad = find_non_finite(a, trans ? k : n, trans ? n : k, Region::kAll);
  if (bad != SIZE_MAX) return non_finite("syrk", "the input", bad, trans ? n : k);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j <= i; ++j) {
      T acc = 0;
      for (size_t t = 0; t < k; ++t) acc = std::fma(trans ? a[t * n + i] : a[i * k + t], trans ? a[t * n + j] : a[j * k + t], acc);
      c[i * n + j] = c[j * n + i] = acc;
    }
  return Status::ok();
}

// ---- cholesky ----

template <typename T>
Status cholesky(size_t n, const T* a, T* out, bool upper, const std::atomic<bool>* cancel) {
  const size_t bad = find_non_finite(a, n, n, Region::kLower);
  if (bad != SIZE_MAX) return non_finite("cholesky", "the input", bad, n);
  lower_copy(n, a, false, out);
  WS_RETURN_IF_ERROR(chol_rec(out, n, 0, n, cancel));
  for (size_t i = 0; i < n; ++i) std::fill(out + i * n + i + 1, out + (i + 1) * n, T(0));  // tiles crossing the diagonal
  return upper ? tile_pairs(out, n, true, cancel) : Status::ok();
}

template <typename T>
Status cholesky_ref(size_t n, const T* a, T* out, bool upper) {
  const size_t bad = find_non_finite(a, n, n, Region::kLower);
  if (bad != SIZE_MAX) return non_finite("cholesky", "the input", bad, n);
  std::fill(out, out + n * n, T(0));
  for (size_t j = 0; j < n; ++j) {
    T d = a[j * n + j];
    for (size_t t = 0; t < j; ++t) d = std::fma(-out[j * n + t], out[j * n + t], d);
    if (!(d > T(0)) || !std::isfinite(d)) return not_pd(j + 1);
    const T p = std::sqrt(d);
    out[j * n + j] = p;
    for (size_t i = j + 1; i < n; ++i) {
      T v = a[i * n + j];
      for (size_t t = 0; t < j; ++t) v = std::fma(-out[i * n + t], out[j * n + t], v);
      out[i * n + j] = v / p;
    }
  }
  return upper ? tile_pairs(out, n, true, nullptr) : Status::ok();
}

// ---- cholesky_inverse ----

template <typename T>
Status cholesky_inverse(size_t n, const T* l, T* out, bool upper, const std::atomic<bool>* cancel) {
  const size_t bad = find_non_finite(l, n, n, upper ? Region::kUpper : Region::kLower);
  if (bad != SIZE_MAX) return non_finite("choleskyInverse", "the factor", bad, n);
  for (size_t i = 0; i < n; ++i)
    if (l[i * n + i] == T(0)) return singular("choleskyInverse", i);
  std::unique_ptr<T[]> lc, x;
  WS_RETURN_IF_ERROR(alloc(lc, n * n, "choleskyInverse"));
  WS_RETURN_IF_ERROR(alloc(x, n * n, "choleskyInverse"));
  lower_copy(n, l, upper, lc.get());
  std::fill(x.get(), x.get() + n * n, T(0));
  for (size_t i = 0; i < n; ++i) x[i * n + i] = T(1);
  // X = L^-1 by blocks of columns: X[j0:, j0:j0+w] solves L[j0:, j0:] Y = I[j0:, j0:j0+w] (rows above j0 are zero),
  // n^3 / 6 multiply-adds in all.
  for (size_t j0 = 0; j0 < n; j0 += kInvBlock) {
    const size_t w = std::min(kInvBlock, n - j0);
    WS_RETURN_IF_ERROR(solve_ll(n - j0, lc.get() + j0 * n + j0, n, false, x.get() + j0 * n + j0, w, n, true, 0, cancel));
  }
  // Row block [i0, i0 + ib) of Xᵀ X, columns up to i0 + ib: sum over t >= i0 of X[t][i] X[t][j].
  for (size_t i0 = 0; i0 < n; i0 += kInvBlock) {
    const size_t ib = std::min(kInvBlock, n - i0);
    WS_RETURN_IF_ERROR(gemm_update<T>(true, false, ib, i0 + ib, n - i0, x.get() + i0 * n + i0, n, x.get() + i0 * n, n,
                                      out + i0 * n, n, false, false, false, cancel));
  }
  return tile_pairs(out, n, false, cancel);
}

template <typename T>
Status cholesky_inverse_ref(size_t n, const T* l, T* out, bool upper) {
  const size_t bad = find_non_finite(l, n, n, upper ? Region::kUpper : Region::kLower);
  if (bad != SIZE_MAX) return non_finite("choleskyInverse", "the factor", bad, n);
  for (size_t i = 0; i < n; ++i)
    if (l[i * n + i] == T(0)) return singular("choleskyInverse", i);
  std::vector<T> lc(n * n), x(n * n, T(0));
  lower_copy(n, l, upper, lc.data());
  for (size_t c = 0; c < n; ++c)
    for (size_t i = c; i < n; ++i) {
      T v = i == c ? T(1) : T(0);
      for (size_t t = c; t < i; ++t) v = std::fma(-lc[i * n + t], x[t * n + c], v);
      x[i * n + c] = v / lc[i * n + i];
    }
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j <= i; ++j) {
      T acc = 0;
      for (size_t t = i; t < n; ++t) acc = std::fma(x[t * n + i], x[t * n + j], acc);
      out[i * n + j] = out[j * n + i] = acc;
    }
  return Status::ok();
}

// ---- trsm ----

namespace {

// Checks a (order N, the referenced triangle) and b (m x n).
template <typename T>
Status trsm_check(const TrsmSpec& sp, size_t m, size_t n, const T* a, const T* b) {
  const size_t N = sp.left ? m : n;
  for (size_t i = 0; i < N; ++i) {
    const size_t lo = sp.upper ? i : 0, hi = sp.upper ? N : i + 1;
    for (size_t j = lo; j < hi; ++j) {
      if (sp.unit && j == i) continue;
      if (!std::isfinite(a[i * N + j])) return non_finite("triangularSolve", "the triangular matrix", i * N + j, N);
    }
  }
  const size_t bad = find_non_finite(b, m, n, Region::kAll);
  if (bad != SIZE_MAX) return non_finite("triangularSolve", "the right-hand side", bad, n);
  if (!sp.unit)
    for (size_t i = 0; i < N; ++i)
      if (a[i * N + i] == T(0)) return singular("triangularSolve", i);
  return Status::ok();
}

}  // namespace

template <typename T>
Status trsm(const TrsmSpec& sp, size_t m, size_t n, const T* a, const T* b, T* x, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(trsm_check(sp, m, n, a, b));
  const size_t N = sp.left ? m : n, R = sp.left ? n : m;
  if (N == 0 || R == 0) return Status::ok();
  // G: the matrix of the equivalent left solve G Y = C (op(A), or op(A)ᵀ for a right solve); lower or upper.
  const bool op_lower = sp.upper == sp.trans;
  const bool g_lower = sp.left ? op_lower : !op_lower;
  auto op_a = [&](size_t i, size_t j) { return sp.trans ? a[j * N + i] : a[i * N + j]; };
  auto g = [&](size_t i, size_t j) { return sp.left ? op_a(i, j) : op_a(j, i); };
  std::unique_ptr<T[]> lc, y;
  WS_RETURN_IF_ERROR(alloc(lc, N * N, "triangularSolve"));
  WS_RETURN_IF_ERROR(alloc(y, N * R, "triangularSolve"));
  const bool rev = !g_lower;  // an upper G becomes lower with the index order reversed
  auto idx = [&](size_t i) { return rev ? N - 1 - i : i; };
  for (size_t i = 0; i < N; ++i)
    for (size_t j = 0; j < N; ++j) lc[i * N + j] = j > i ? T(0) : (sp.unit && i == j ? T(1) : g(idx(i), idx(j)));
  for (size_t i = 0; i < N; ++i)
    for (size_t q = 0; q < R; ++q) y[i * R + q] = sp.left ? b[idx(i) * n + q] : b[q * n + idx(i)];
  WS_RETURN_IF_ERROR(solve_ll(N, lc.get(), N, sp.unit, y.get(), R, R, false, 0, cancel));
  for (size_t i = 0; i < N; ++i)
    for (size_t q = 0; q < R; ++q) (sp.left ? x[idx(i) * n + q] : x[q * n + idx(i)]) = y[i * R + q];
  return Status::ok();
}

template <typename T>
Status trsm_ref(const TrsmSpec& sp, size_t m, size_t n, const T* a, const T* b, T* x) {
  WS_RETURN_IF_ERROR(trsm_check(sp, m, n, a, b));
  const size_t N = sp.left ? m : n;
  auto op_a = [&](size_t i, size_t j) { return sp.trans ? a[j * N + i] : a[i * N + j]; };
  const bool op_lower = sp.upper == sp.trans;
  if (sp.left) {  // column q: op(A) x = b
    for (size_t q = 0; q < n; ++q)
      for (size_t s = 0; s < m; ++s) {
        const size_t i = op_lower ? s : m - 1 - s;
        T v = b[i * n + q];
        if (op_lower)
          for (size_t t = 0; t < i; ++t) v = std::fma(-op_a(i, t), x[t * n + q], v);
        else
          for (size_t t = i + 1; t < m; ++t) v = std::fma(-op_a(i, t), x[t * n + q], v);
        x[i * n + q] = sp.unit ? v : v / op_a(i, i);
      }
  } else {  // row r: x op(A) = b; x[j] depends on x[t] with op(A)[t][j] != 0, t != j
    for (size_t r = 0; r < m; ++r)
      for (size_t s = 0; s < n; ++s) {
        const size_t j = op_lower ? n - 1 - s : s;
        T v = b[r * n + j];
        if (op_lower)
          for (size_t t = j + 1; t < n; ++t) v = std::fma(-x[r * n + t], op_a(t, j), v);
        else
          for (size_t t = 0; t < j; ++t) v = std::fma(-x[r * n + t], op_a(t, j), v);
        x[r * n + j] = sp.unit ? v : v / op_a(j, j);
      }
  }
  return Status::ok();
}

#define WS_FACTOR_INSTANTIATE(T)                                                                               \
  template Status syrk<T>(bool, size_t, size_t, const T*, T*, const std::atomic<bool>*);                       \
  template Status syrk_ref<T>(bool, size_t, size_t, const T*, T*);                                             \
  template Status cholesky<T>(size_t, const T*, T*, bool, const std::atomic<bool>*);                           \
  template Status cholesky_ref<T>(size_t, const T*, T*, bool);                                                 \
  template Status cholesky_inverse<T>(size_t, const T*, T*, bool, const std::atomic<bool>*);                   \
  template Status cholesky_inverse_ref<T>(size_t, const T*, T*, bool);                                         \
  template Status trsm<T>(const TrsmSpec&, size_t, size_t, const T*, const T*, T*, const std::atomic<bool>*);  \
  template Status trsm_ref<T>(const TrsmSpec&, size_t, size_t, const T*, const T*, T*);
WS_FACTOR_INSTANTIATE(float)
WS_FACTOR_INSTANTIATE(double)
#undef WS_FACTOR_INSTANTIATE

}  // namespace ws
