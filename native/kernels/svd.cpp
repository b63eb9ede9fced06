// SPDX-License-Identifier: MIT
// Singular value decompositions (see svd.h), all by one-sided (Hestenes) Jacobi on the rows of a k x L working
// matrix W (the columns of the matrix being orthogonalized), with the rotations accumulated in Jt (k x k, rows =
// columns of J). A pair (i, j) with g = w_i . w_j is rotated when |g| > tol sqrt(|w_i|^2 |w_j|^2); the rotation
// (Rutishauser's formulas) zeroes g. Squared norms are recomputed at the start of each sweep and tracked within it
// (|w_i|^2 - t g, |w_j|^2 + t g). A sweep with no rotation ends the iteration; reaching the sweep cap (60) without
// one ends in kNoConvergence.
//
// When W has converged: sigma_j = |w_j| (sorted descending, ties by index), the normalized rows w_j / sigma_j are
// one factor and Jt the other. Rows whose norm is zero (or below kTiny, where f32 products would underflow) are
// replaced by a completion of the basis (Gram-Schmidt of unit vectors, or a Householder QR when many are missing;
// f64), so the factors stay orthonormal.
//
// svd_batched_f32: W = A^T (tall) or A (wide), cyclic pair order, scaled (fast) rotations; with AVX-512, 16 matrices per chunk in the 16
// lanes (SvdOps::jacobi16), each lane with exactly the arithmetic of jacobi_serial, else one matrix per chunk.
// svd_f32: Householder QR of A (or of A^T when wide), then W = R (Jacobi on R^T: converges in fewer sweeps), in
// parallel: the rows are cut into blocks of bs rows; a sweep first runs all pairs inside each block, then the
// block pairs of a round-robin tournament, the disjoint block pairs of a round in parallel (in 2 x 2 sub-blocks
// whose four rows stay in L1 while their four pairs run). Each sweep visits the rows in order of decreasing norm. The order
// depends only on the sizes, never on the thread count. The rows are kept in scaled form (struct Scaled): a rotation is
// two FMAs per element instead of four operations, which is what bounds a sweep (one 512-bit FMA port).
// Finally U = Q J (tall) or Vt = J^T Q^T (wide) through sgemm.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "svd-kernels.h"
#include "weightsmith/cpu.h"
#include "weightsmith/gemm.h"
#include "weightsmith/svd.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

constexpr int kDefaultMaxSweeps = 60;
std::atomic<int> g_max_sweeps{kDefaultMaxSweeps};  // svd_set_max_sweeps (tests)
constexpr int kDefaultScaleGuard = 30;
std::atomic<int> g_scale_guard{kDefaultScaleGuard};  // svd_set_scale_guard (tests): scales below 2^-e move into rows
constexpr double kTiny = 1e-30;  // squared norms below this count as zero (the matrix is scaled to max |a| < 1)

// Portable vector helpers with the lanes of the AVX-512 ones: 64 partial sums (element i into i mod 64), folded as
// (s[0:16] + s[16:32]) + (s[32:48] + s[48:64]) lane by lane, then the 16 lanes added in f64 in order.
double fold64(const float* acc) {
  double s = 0.0;
  for (int l = 0; l < 16; ++l) s += (acc[l] + acc[16 + l]) + (acc[32 + l] + acc[48 + l]);
  return s;
}

double dot_portable(const float* x, const float* y, size_t n) {
  float acc[64] = {};
  for (size_t i = 0; i < n; ++i) acc[i % 64] = std::fma(x[i], y[i], acc[i % 64]);
  return fold64(acc);
}

void axpy_portable(float* y, const float* x, size_t n, float alpha) {
  for (size_t i = 0; i < n; ++i) y[i] = std::fma(alpha, x[i], y[i]);
}

void rot_portable(float* x, float* y, size_t n, float c, float s) {
  for (size_t i = 0; i < n; ++i) {
    const float a = x[i], b = y[i];
    x[i] = std::fma(-s, b, c * a);
    y[i] = std::fma(s, a, c * b);
  }
}

void frot_portable(float* x, float* y, size_t n, float a, float b) {
  for (size_t i = 0; i < n; ++i) {
    const float p = x[i], q = y[i];
    x[i] = std::fma(-a, q, p);
    y[i] = std::fma(b, p, q);
  }
}

constexpr SvdOps kPortable = {dot_portable, axpy_portable, rot_portable, frot_portable, max_abs_portable, nullptr};

Status oom() { return Status(Code::kOutOfMemory, "svd: cannot allocate its work buffers"); }
Status no_convergence(size_t k, size_t l) {
  return Status(Code::kNoConvergence, "svd: one-sided Jacobi did not converge in " + std::to_string(g_max_sweeps.load()) +
                                          " sweeps (" + std::to_string(k) + " x " + std::to_string(l) + ")");
}

double tolerance(size_t l) { return std::max(16.0, 4.0 * std::sqrt(static_cast<double>(l))) * 5.9604645e-8; }

// Rows in scaled form: row i of W (and of Jt) is d_i times the stored row, so that a rotation costs two FMAs per
// element (a "fast" rotation) instead of four operations: with t = tan(theta) and c = cos(theta), the stored rows
// become x - t (d_j / d_i) y and y + t (d_i / d_j) x and the scales c d_i, c d_j. A scale below 2^-30 is moved into
// its rows (times 2^-30, exact), and all scales are folded into the rows at the start of each sweep.
struct Scaled {
  std::vector<double> d;
  void fold(size_t k, size_t l, float* w, float* jt) {
    for (size_t i = 0; i < k; ++i)
      if (d[i] != 1.0) {
        const float f = static_cast<float>(d[i]);
        for (size_t r = 0; r < l; ++r) w[i * l + r] *= f;
        for (size_t r = 0; r < k; ++r) jt[i * k + r] *= f;
        d[i] = 1.0;
      }
  }
  int e = g_scale_guard.load();
  void guard(size_t i, size_t k, size_t l, float* w, float* jt) {
    if (d[i] >= std::ldexp(1.0, -e)) return;
    const float f = std::ldexp(1.0f, -e);
    for (size_t r = 0; r < l; ++r) w[i * l + r] *= f;
    for (size_t r = 0; r < k; ++r) jt[i * k + r] *= f;
    d[i] = std::ldexp(d[i], e);
  }
};

// One pair (rows i, j of the k x L W and the k x k Jt, scaled by sc): rotates them when they are not yet orthogonal
// (ni, nj: the rows' squared norms, unscaled). Returns whether it rotated.
inline bool jacobi_pair(size_t i, size_t j, float* w, float* jt, Scaled& sc, double& ni, double& nj, size_t l, size_t k,
                        double tol, const SvdOps& ops) {
  if (ni < kTiny || nj < kTiny) return false;
  float* wi = w + i * l;
  float* wj = w + j * l;
  const double di = sc.d[i], dj = sc.d[j];
  const double g = ops.dot(wi, wj, l) * di * dj;
  if (!(std::fabs(g) > tol * std::sqrt(ni * nj))) return false;
  const double zeta = (nj - ni) / (2.0 * g);
  const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1.0 + zeta * zeta));
  const double c = 1.0 / std::sqrt(1.0 + t * t);
  const float a = static_cast<float>(t * (dj / di)), b = static_cast<float>(t * (di / dj));
  ops.frot(wi, wj, l, a, b);
  ops.frot(jt + i * k, jt + j * k, k, a, b);
  ni -= t * g;
  nj += t * g;
  sc.d[i] = di * c;
  sc.d[j] = dj * c;
  sc.guard(i, k, l, w, jt);
  sc.guard(j, k, l, w, jt);
  return true;
}

// Completes the basis when many rows are missing: Householder QR (f64) of the r = done.size() orthonormal rows of lw
// (as columns), then row zero[t] = Q e_(r + t), orthogonal to them and to each other. Cost r^2 L + 2 |zero| r L.
void complete_householder(size_t l, float* lw, const std::vector<size_t>& done, const std::vector<size_t>& zero) {
  const size_t r = done.size();
  std::vector<double> v(r * l), tau(r, 0.0);
  for (size_t c = 0; c < r; ++c)
    for (size_t i = 0; i < l; ++i) v[c * l + i] = lw[done[c] * l + i];
  for (size_t c = 0; c < r; ++c) {
    double* x = &v[c * l];
    double sigma2 = 0.0;
    for (size_t i = c + 1; i < l; ++i) sigma2 += x[i] * x[i];
    if (sigma2 == 0.0) continue;
    const double alpha = x[c], norm = std::sqrt(alpha * alpha + sigma2), beta = alpha >= 0 ? -norm : norm;
    tau[c] = (beta - alpha) / beta;
    const double inv = 1.0 / (alpha - beta);
    for (size_t i = c + 1; i < l; ++i) x[i] *= inv;
    x[c] = beta;
    for (size_t d = c + 1; d < r; ++d) {
      double* y = &v[d * l];
      double g = y[c];
      for (size_t i = c + 1; i < l; ++i) g += x[i] * y[i];
      g *= tau[c];
      y[c] -= g;
      for (size_t i = c + 1; i < l; ++i) y[i] -= g * x[i];
    }
  }
  std::vector<double> x(l);
  for (size_t t = 0; t < zero.size(); ++t) {
    std::fill(x.begin(), x.end(), 0.0);
    x[r + t] = 1.0;
    for (size_t c = r; c-- > 0;) {
      if (tau[c] == 0.0) continue;
      const double* h = &v[c * l];
      double g = x[c];
      for (size_t i = c + 1; i < l; ++i) g += h[i] * x[i];
      g *= tau[c];
      x[c] -= g;
      for (size_t i = c + 1; i < l; ++i) x[i] -= g * h[i];
    }
    double nx = 0.0;
    for (double a : x) nx += a * a;
    const double inv = 1.0 / std::sqrt(nx);
    for (size_t i = 0; i < l; ++i) lw[zero[t] * l + i] = static_cast<float>(x[i] * inv);
  }
}

// The converged W (k x L) and Jt (k x k): sigma sorted descending, the normalized (and completed) rows of W and the
// rows of Jt in that order, into lw (k x L), jp (k x k) and s (k), sigma scaled back by 2^e.
void finish(size_t k, size_t l, const float* w, const float* jt, int e, float* lw, float* jp, float* s) {
  std::vector<double> nrm(k);
  for (size_t j = 0; j < k; ++j) {
    double acc = 0.0;
    for (size_t i = 0; i < l; ++i) acc += static_cast<double>(w[j * l + i]) * w[j * l + i];
    nrm[j] = acc;
  }
  std::vector<size_t> perm(k);
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](size_t x, size_t y) { return nrm[x] > nrm[y]; });
  std::vector<size_t> zero;
  for (size_t r = 0; r < k; ++r) {
    const size_t j = perm[r];
    const double sg = std::sqrt(nrm[j]);
    s[r] = scale_pow2(static_cast<float>(sg), e);
    std::memcpy(jp + r * k, jt + j * k, k * sizeof(float));
    if (nrm[j] < kTiny) {
      zero.push_back(r);
      continue;
    }
    const double inv = 1.0 / sg;
    for (size_t i = 0; i < l; ++i) lw[r * l + i] = static_cast<float>(w[j * l + i] * inv);
  }
  if (zero.empty()) return;
  std::vector<size_t> done;
  for (size_t r = 0; r < k; ++r)
    if (nrm[perm[r]] >= kTiny) done.push_back(r);
  const double nr = static_cast<double>(done.size()), nz = static_cast<double>(zero.size());
  // Gram-Schmidt costs about 4 |zero| (r + |zero| / 2) L, the Householder route r^2 L + 2 |zero| r L.
  if (nr * nr + 2.0 * nz * nr < 4.0 * nz * (nr + nz / 2.0)) {
    complete_householder(l, lw, done, zero);
    return;
  }
  // Few missing rows: complete with unit vectors e_p, orthogonalized twice against the rows set so far, in f64.
  std::vector<double> x(l), best(l);
  size_t p = 0;
  for (size_t r : zero) {
    double best_norm = -1.0;
    for (size_t tries = 0; tries < l; ++tries, p = (p + 1) % l) {
      std::fill(x.begin(), x.end(), 0.0);
      x[p] = 1.0;
      for (int pass = 0; pass < 2; ++pass)
        for (size_t d : done) {
          const float* row = lw + d * l;
          double g = 0.0;
          for (size_t i = 0; i < l; ++i) g += row[i] * x[i];
          for (size_t i = 0; i < l; ++i) x[i] -= g * row[i];
        }
      double nx = 0.0;
      for (double v : x) nx += v * v;
      if (nx > best_norm) {
        best_norm = nx;
        best = x;
      }
      if (nx > 0.25) break;
    }
    p = (p + 1) % l;
    const double inv = 1.0 / std::sqrt(best_norm);
    for (size_t i = 0; i < l; ++i) lw[r * l + i] = static_cast<float>(best[i] * inv);
    done.push_back(r);
  }
}

inline float sum4(const float* a) { return (a[0] + a[1]) + (a[2] + a[3]); }

// Serial cyclic one-sided Jacobi on W (k x L) with Jt = I, the arithmetic of one lane of SvdOps::jacobi16: four f32
// FMA chains (index mod 4, added as (0 + 1) + (2 + 3)) for dots and squared norms (recomputed at the start of each
// sweep, tracked as |w_i|^2 - t g and |w_j|^2 + t g within it), the tangent t in f32 too (t = 1 / (2 zeta) once
// zeta^2 would overflow). Rows are kept in scaled form, all in f32 (as in jacobi_blocked): row i of W and of Jt is
// d_i times the stored row; a rotation is two FMAs per element, x - t (d_j / d_i) y and y + t (d_i / d_j) x, and
// scales d c with c = 1 / sqrt(1 + t^2); a scale below 2^-30 moves into its rows (times 2^-30, exact); the scales are
// folded into the rows (a product per element) at the start of each sweep and at the end.
// Returns the number of sweeps or -1.
int jacobi_serial(size_t k, size_t l, float* w, float* jt, float tol) {
  std::memset(jt, 0, k * k * sizeof(float));
  for (size_t i = 0; i < k; ++i) jt[i * k + i] = 1.0f;
  std::vector<float> nrm(k), d(k, 1.0f);
  const float tiny = static_cast<float>(kTiny);
  const int ge = g_scale_guard.load();
  const float glo = std::ldexp(1.0f, -ge), ghi = std::ldexp(1.0f, ge);
  auto scale = [&](size_t i, float f) {
    for (size_t r = 0; r < l; ++r) w[i * l + r] *= f;
    for (size_t r = 0; r < k; ++r) jt[i * k + r] *= f;
  };
  auto fold = [&]() {
    for (size_t i = 0; i < k; ++i)
      if (d[i] != 1.0f) {
        scale(i, d[i]);
        d[i] = 1.0f;
      }
  };
  for (int sweep = 1; sweep <= g_max_sweeps.load(); ++sweep) {
    fold();
    for (size_t i = 0; i < k; ++i) {
      float acc[4] = {};
      for (size_t r = 0; r < l; ++r) acc[r & 3] = std::fma(w[i * l + r], w[i * l + r], acc[r & 3]);
      nrm[i] = sum4(acc);
    }
    bool any = false;
    for (size_t i = 0; i + 1 < k; ++i)
      for (size_t j = i + 1; j < k; ++j) {
        float* wi = w + i * l;
        float* wj = w + j * l;
        float g4[4] = {};
        for (size_t r = 0; r < l; ++r) g4[r & 3] = std::fma(wi[r], wj[r], g4[r & 3]);
        const float di = d[i], dj = d[j];
        const float g = (sum4(g4) * di) * dj, ni = nrm[i], nj = nrm[j];
        if (!(ni >= tiny && nj >= tiny && std::fabs(g) > tol * (std::sqrt(ni) * std::sqrt(nj)))) continue;
        const float zeta = (nj - ni) / (2.0f * g), az = std::fabs(zeta);
        const float t = az > 1e18f ? 0.5f / zeta : (zeta >= 0 ? 1.0f : -1.0f) / (az + std::sqrt(1.0f + zeta * zeta));
        const float c = 1.0f / std::sqrt(1.0f + t * t);
        const float fa = t * (dj / di), fb = t * (di / dj);
        any = true;
        frot_portable(wi, wj, l, fa, fb);
        frot_portable(jt + i * k, jt + j * k, k, fa, fb);
        const float tg = t * g;
        nrm[i] = ni - tg;
        nrm[j] = nj + tg;
        d[i] = di * c;
        d[j] = dj * c;
        for (size_t x : {i, j})
          if (d[x] < glo) {
            scale(x, glo);
            d[x] *= ghi;
          }
      }
    if (!any) {
      fold();
      return sweep;
    }
  }
  return -1;
}

// Parallel blocked one-sided Jacobi on W (k x L) with Jt = I (see the header comment).
Status jacobi_blocked(size_t k, size_t l, float* w, float* jt, const SvdOps& ops, const std::atomic<bool>* cancel) {
  std::memset(jt, 0, k * k * sizeof(float));
  for (size_t i = 0; i < k; ++i) jt[i * k + i] = 1.0f;
  std::vector<double> nrm(k);
  const double tol = tolerance(l);
  // Blocks of 64 rows at every size: at 2048 and 4096 the fewer rounds (less traffic between the caches) win over
  // keeping a block pair within L2 (4096^2: 72 s with 64 rows against 81 s with 16).
  const size_t bs = 64;
  const size_t nb = chunk_count(k, bs);
  const size_t players = nb + (nb & 1);
  std::vector<size_t> counts(std::max<size_t>(nb, 1));
  Scaled sc;
  sc.d.assign(k, 1.0);
  auto block = [&](size_t b, size_t& lo, size_t& hi) {
    lo = b * bs;
    hi = std::min(k, lo + bs);
  };
  std::vector<size_t> ord(k);
  for (int sweep = 1; sweep <= g_max_sweeps.load(); ++sweep) {
    {
      // Squared norms recomputed (they are tracked as |w_i|^2 - t g, |w_j|^2 + t g within a sweep), and the sweep
      // visits the rows sorted by them, descending (ties by index): a little faster convergence.
      sc.fold(k, l, w, jt);
      WS_RETURN_IF_ERROR(parallel_for(
          chunk_count(k, 64),
          [&](size_t c) {
            for (size_t i = c * 64; i < std::min(k, c * 64 + 64); ++i) nrm[i] = ops.dot(w + i * l, w + i * l, l);
            return Status::ok();
          },
          cancel));
      std::iota(ord.begin(), ord.end(), 0);
      std::stable_sort(ord.begin(), ord.end(), [&](size_t x, size_t y) { return nrm[x] > nrm[y]; });
    }
    // Position i of the sweep order is row ord[i].
    auto pair = [&](size_t i, size_t j) {
      const size_t a = ord[i], b = ord[j];
      return jacobi_pair(a, b, w, jt, sc, nrm[a], nrm[b], l, k, tol, ops);
    };
    std::fill(counts.begin(), counts.end(), 0);
    WS_RETURN_IF_ERROR(parallel_for(
        nb,
        [&](size_t b) {
          size_t lo, hi;
          block(b, lo, hi);
          for (size_t i = lo; i + 1 < hi; ++i)
            for (size_t j = i + 1; j < hi; ++j)
              counts[b] += pair(i, j);
          return Status::ok();
        },
        cancel));
    for (size_t round = 0; round + 1 < players; ++round) {
      WS_RETURN_IF_ERROR(parallel_for(
          players / 2,
          [&](size_t slot) {
            size_t p, q;
            if (slot == 0) {
              p = round;
              q = players - 1;
            } else {
              p = (round + slot) % (players - 1);
              q = (round + players - 1 - slot) % (players - 1);
            }
            if (p >= nb || q >= nb) return Status::ok();
            if (p > q) std::swap(p, q);
            size_t plo, phi, qlo, qhi;
            block(p, plo, phi);
            block(q, qlo, qhi);
            size_t rot = 0;
            // 2 x 2 sub-blocks: four pairs on four rows (of W and Jt) that stay in L1.
            for (size_t i0 = plo; i0 < phi; i0 += 2)
              for (size_t j0 = qlo; j0 < qhi; j0 += 2)
                for (size_t i = i0; i < std::min(i0 + 2, phi); ++i)
                  for (size_t j = j0; j < std::min(j0 + 2, qhi); ++j)
                    rot += pair(i, j);
            counts[p] += rot;
            return Status::ok();
          },
          cancel));
    }
    size_t total = 0;
    for (size_t c : counts) total += c;
    if (total == 0) {
      sc.fold(k, l, w, jt);
      return Status::ok();
    }
  }
  return no_convergence(k, l);
}

Status check_input(const char* what, const float* a, size_t count, int* e) {
  size_t bad = 0;
  const float mx = max_abs_f32(a, count, &bad);
  if (mx < 0.0f) return Status(Code::kNonFinite, std::string(what) + ": non-finite value at index " + std::to_string(bad));
  *e = pow2_exponent_for(mx);
  return Status::ok();
}

// Packs 2^-e A (m x n) as the rows to orthogonalize: its columns (tall) or its rows (wide), element (i, r) at
// dst[(i * l + r) * stride].
void pack_direct(size_t m, size_t n, const float* a, int e, float* dst, size_t stride) {
  const bool tall = m >= n;
  const size_t l = tall ? m : n;
  const Pow2 down(-e);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) dst[(tall ? j * l + i : i * l + j) * stride] = down(a[i * n + j]);
}

// From the converged W (k x L) and Jt to u, s, vt of the m x n matrix; lw (k x L) and jp (k x k) are scratch.
void output_direct(size_t m, size_t n, int e, const float* w, const float* jt, float* lw, float* jp, float* u, float* s,
                   float* vt) {
  const bool tall = m >= n;
  const size_t k = tall ? n : m, l = tall ? m : n;
  finish(k, l, w, jt, e, lw, jp, s);
  if (tall) {
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < k; ++j) u[i * k + j] = lw[j * m + i];
    std::memcpy(vt, jp, k * k * sizeof(float));
  } else {
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < k; ++j) u[i * k + j] = jp[j * k + i];
    std::memcpy(vt, lw, k * n * sizeof(float));
  }
}

}  // namespace

int svd_set_max_sweeps(int n) {
  const int old = g_max_sweeps.load();
  g_max_sweeps.store(n > 0 ? n : kDefaultMaxSweeps);
  return old;
}

int svd_set_scale_guard(int e) {
  const int old = g_scale_guard.load();
  g_scale_guard.store(e > 0 ? e : kDefaultScaleGuard);
  return old;
}

const SvdOps& svd_ops() {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512)
    if (const SvdOps* o = svd_ops_avx512()) return *o;
#endif
  return kPortable;
}

#if !defined(__x86_64__)
const SvdOps* svd_ops_avx512() { return nullptr; }
#endif

Status svd_batched_f32(size_t batch, size_t m, size_t n, const float* a, float* u, float* s, float* vt,
                       const std::atomic<bool>* cancel) {
  const size_t k = std::min(m, n), l = std::max(m, n);
  if (batch == 0 || k == 0) return Status::ok();
  size_t bad = 0;
  if (max_abs_f32(a, batch * m * n, &bad) < 0.0f)
    return Status(Code::kNonFinite, "svdBatched: non-finite value at index " + std::to_string(bad));
  const SvdOps& ops = svd_ops();
  const double tol = tolerance(l);
  // Groups of 16 matrices (one per lane) with jacobi16, else one matrix per chunk; either way each matrix gets the
  // same arithmetic.
  const size_t lanes = ops.jacobi16 ? 16 : 1;
  return parallel_for(
      chunk_count(batch, lanes),
      [&](size_t grp) {
        std::vector<float> wl, jl, w, jt, jp, lw;
        try {
          w.resize(k * l);
          jt.resize(k * k);
          jp.resize(k * k);
          lw.resize(k * l);
          if (lanes > 1) {
            wl.assign(k * l * lanes, 0.0f);
            jl.resize(k * k * lanes);
          }
        } catch (const std::bad_alloc&) {
          return oom();
        }
        const size_t b0 = grp * lanes, nb = std::min(lanes, batch - b0);
        int e[16] = {};
        for (size_t t = 0; t < nb; ++t) {
          const float* ab = a + (b0 + t) * m * n;
          WS_RETURN_IF_ERROR(check_input("svdBatched", ab, m * n, &e[t]));
          if (lanes > 1) pack_direct(m, n, ab, e[t], wl.data() + t, lanes);
        }
        const int sw = lanes > 1 ? ops.jacobi16(k, l, wl.data(), jl.data(), static_cast<float>(tol), static_cast<float>(kTiny), g_max_sweeps.load(), g_scale_guard.load()) : 0;
        if (sw < 0) return no_convergence(k, l);
        for (size_t t = 0; t < nb; ++t) {
          const size_t b = b0 + t;
          if (lanes > 1) {
            for (size_t i = 0; i < k * l; ++i) w[i] = wl[i * lanes + t];
            for (size_t i = 0; i < k * k; ++i) jt[i] = jl[i * lanes + t];
          } else {
            pack_direct(m, n, a + b * m * n, e[t], w.data(), 1);
            if (jacobi_serial(k, l, w.data(), jt.data(), static_cast<float>(tol)) < 0) return no_convergence(k, l);
          }
          output_direct(m, n, e[t], w.data(), jt.data(), lw.data(), jp.data(), u + b * m * k, s + b * k, vt + b * k * n);
        }
        return Status::ok();
      },
      cancel);
}

namespace {

Status svd_f32_impl(size_t m, size_t n, const float* a, size_t rank, float* u, float* s, float* vt,
                    const std::atomic<bool>* cancel) {
  const size_t k = std::min(m, n);
  if (k == 0) return Status::ok();
  if (rank < 1 || rank > k) return Status(Code::kOutOfRange, "svd: rank must be in [1, min(m, n)]");
  int e = 0;
  WS_RETURN_IF_ERROR(check_input("svd", a, m * n, &e));
  const SvdOps& ops = svd_ops();
  const bool tall = m >= n;
  const size_t l = tall ? m : n;  // the long side: QR of an l x k matrix
  std::vector<float> x, q, r, jt, jp, lw, sv;
  try {
    x.resize(l * k);
    q.resize(l * k);
    r.resize(k * k);
    jt.resize(k * k);
    jp.resize(k * k);
    lw.resize(k * k);
    sv.resize(k);
  } catch (const std::bad_alloc&) {
    return oom();
  }
  // x = 2^-e A (tall) or 2^-e A^T (wide), l x k.
  const Pow2 down(-e);
  if (tall) {
    for (size_t i = 0; i < m * n; ++i) x[i] = down(a[i]);
  } else {
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j) x[j * m + i] = down(a[i * n + j]);
  }
  WS_RETURN_IF_ERROR(qr_blocked(l, k, x.data(), q.data(), r.data(), cancel));
  WS_RETURN_IF_ERROR(jacobi_blocked(k, k, r.data(), jt.data(), ops, cancel));
  finish(k, k, r.data(), jt.data(), e, lw.data(), jp.data(), sv.data());
  std::memcpy(s, sv.data(), rank * sizeof(float));
  // x = Q J[:, :rank] (l x rank): the long-side factor; lw rows: the short-side factor.
  WS_RETURN_IF_ERROR(sgemm(false, true, l, rank, k, q.data(), jp.data(), x.data(), cancel));
  if (tall) {
    std::memcpy(u, x.data(), m * rank * sizeof(float));
    std::memcpy(vt, lw.data(), rank * n * sizeof(float));
  } else {
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < rank; ++j) u[i * rank + j] = lw[j * k + i];
    for (size_t j = 0; j < rank; ++j)
      for (size_t i = 0; i < n; ++i) vt[j * n + i] = x[i * rank + j];
  }
  return Status::ok();
}

Status svd_f32_ref_impl(size_t m, size_t n, const float* a, float* u, float* s, float* vt) {
  const size_t k = std::min(m, n), l = std::max(m, n);
  if (k == 0) return Status::ok();
  int e = 0;
  WS_RETURN_IF_ERROR(check_input("svd", a, m * n, &e));
  const bool tall = m >= n;
  std::vector<float> w(k * l), jt(k * k, 0.0f), jp(k * k), lw(k * l);
  const Pow2 down(-e);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) (tall ? w[j * m + i] : w[i * n + j]) = down(a[i * n + j]);
  for (size_t i = 0; i < k; ++i) jt[i * k + i] = 1.0f;
  const double tol = tolerance(l);
  auto dot = [&](const float* x, const float* y, size_t len) {
    double acc = 0.0;
    for (size_t i = 0; i < len; ++i) acc += static_cast<double>(x[i]) * y[i];
    return acc;
  };
  int sweep = 1;
  for (;; ++sweep) {
    if (sweep > g_max_sweeps.load()) return no_convergence(k, l);
    size_t rotations = 0;
    for (size_t i = 0; i + 1 < k; ++i)
      for (size_t j = i + 1; j < k; ++j) {
        float *wi = &w[i * l], *wj = &w[j * l];
        const double ni = dot(wi, wi, l), nj = dot(wj, wj, l);
        if (ni < kTiny || nj < kTiny) continue;
        const double g = dot(wi, wj, l);
        if (!(std::fabs(g) > tol * std::sqrt(ni * nj))) continue;
        const double zeta = (nj - ni) / (2.0 * g);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1.0 + zeta * zeta));
        const double c = 1.0 / std::sqrt(1.0 + t * t), sn = c * t;
        auto rotate = [&](float* x, float* y, size_t len) {
          for (size_t q = 0; q < len; ++q) {
            const double p0 = x[q], p1 = y[q];
            x[q] = static_cast<float>(c * p0 - sn * p1);
            y[q] = static_cast<float>(sn * p0 + c * p1);
          }
        };
        rotate(wi, wj, l);
        rotate(&jt[i * k], &jt[j * k], k);
        ++rotations;
      }
    if (rotations == 0) break;
  }
  finish(k, l, w.data(), jt.data(), e, lw.data(), jp.data(), s);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < k; ++j) u[i * k + j] = tall ? lw[j * m + i] : jp[j * k + i];
  std::memcpy(vt, tall ? jp.data() : lw.data(), k * n * sizeof(float));
  return Status::ok();
}

}  // namespace

Status svd_f32(size_t m, size_t n, const float* a, size_t rank, float* u, float* s, float* vt,
               const std::atomic<bool>* cancel) {
  try {
    return svd_f32_impl(m, n, a, rank, u, s, vt, cancel);
  } catch (const std::bad_alloc&) {
    return oom();
  }
}

Status svd_f32_ref(size_t m, size_t n, const float* a, float* u, float* s, float* vt) {
  try {
    return svd_f32_ref_impl(m, n, a, u, s, vt);
  } catch (const std::bad_alloc&) {
    return oom();
  }
}

}  // namespace ws
