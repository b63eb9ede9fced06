// SPDX-License-Identifier: MIT
// Householder QR (see svd.h). Blocked version: panels of kNb columns are factored one reflector at a time on a
// transposed copy (columns contiguous), the panel's reflectors are gathered into V (unit lower trapezoidal) and the
// upper triangular T of the compact WY form H_1 ... H_nb = I - V T V^T, and the trailing columns are updated with
// three sgemm calls (W = V^T A2, W = T^T W, A2 -= V W). The thin Q is accumulated backwards from [I; 0] the same
// way (with T instead of T^T). Finally rows of R with a negative diagonal are negated along with the columns of Q.
// The matrix is scaled by a power of two first (exact), so squared norms neither overflow nor underflow.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "svd-kernels.h"
#include "weightsmith/gemm.h"
#include "weightsmith/svd.h"

namespace ws {

namespace {

constexpr size_t kNb = 64;

// Householder reflector for x[0..len): on return x[0] = beta, x[1..) = v[1..) (v[0] = 1), H = I - tau v v^T maps x
// to beta e_1.
float householder(float* x, size_t len, const SvdOps& ops) {
  const double alpha = x[0];
  const double sigma2 = len > 1 ? ops.dot(x + 1, x + 1, len - 1) : 0.0;
  if (sigma2 == 0.0) return 0.0f;
  const double norm = std::sqrt(alpha * alpha + sigma2);
  const double beta = alpha >= 0 ? -norm : norm;
  const double tau = (beta - alpha) / beta;
  const float inv = static_cast<float>(1.0 / (alpha - beta));
  for (size_t i = 1; i < len; ++i) x[i] *= inv;
  x[0] = static_cast<float>(beta);
  return static_cast<float>(tau);
}

// Applies H = I - tau v v^T (v[0] = 1, v[1..) = v1) to y[0..len).
void apply_reflector(const float* v1, float tau, float* y, size_t len, const SvdOps& ops) {
  if (tau == 0.0f) return;
  const double d = y[0] + (len > 1 ? ops.dot(v1, y + 1, len - 1) : 0.0);
  const float w = static_cast<float>(tau * d);
  y[0] -= w;
  if (len > 1) ops.axpy(y + 1, v1, len - 1, -w);
}

Status oom(const char* what) { return Status(Code::kOutOfMemory, std::string("qr: cannot allocate ") + what); }

// Makes the diagonal of r [k x n] non-negative, negating q's columns [m x k] to match.
void fix_signs(size_t m, size_t n, size_t k, float* q, float* r) {
  for (size_t i = 0; i < k; ++i) {
    if (!(r[i * n + i] < 0.0f)) continue;
    for (size_t j = i; j < n; ++j) r[i * n + j] = -r[i * n + j];
    if (q)
      for (size_t t = 0; t < m; ++t) q[t * k + i] = -q[t * k + i];
  }
}

struct Panel {
  size_t j0 = 0, nb = 0, mm = 0;
  std::vector<float> v;  // mm x nb, row-major, unit lower trapezoidal
  std::vector<float> t;  // nb x nb, upper triangular
};

// c (rows x cols) -= a (rows x kk) b (kk x cols) via sgemm into tmp.
Status sub_product(size_t rows, size_t cols, size_t kk, const float* a, bool ta, const float* b, bool tb, float* c,
                   std::vector<float>& tmp, const std::atomic<bool>* cancel) {
  tmp.resize(rows * cols);
  WS_RETURN_IF_ERROR(sgemm(ta, tb, rows, cols, kk, a, b, tmp.data(), cancel));
  for (size_t i = 0; i < rows * cols; ++i) c[i] -= tmp[i];
  return Status::ok();
}

// y (mm x cols, contiguous) = (I - V op(T) V^T) y, op(T) = T^T when trans.
Status apply_block(const Panel& p, bool trans, float* y, size_t cols, std::vector<float>& w, std::vector<float>& w2,
                   std::vector<float>& tmp, const std::atomic<bool>* cancel) {
  w.resize(p.nb * cols);
  w2.resize(p.nb * cols);
  WS_RETURN_IF_ERROR(sgemm(true, false, p.nb, cols, p.mm, p.v.data(), y, w.data(), cancel));
  WS_RETURN_IF_ERROR(sgemm(trans, false, p.nb, cols, p.nb, p.t.data(), w.data(), w2.data(), cancel));
  return sub_product(p.mm, cols, p.nb, p.v.data(), false, w2.data(), false, y, tmp, cancel);
}

}  // namespace

float max_abs_portable(const float* a, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const float x = std::fabs(a[i]);
    if (!(x <= 3.4028235e38f)) return -1.0f;
    m = x > m ? x : m;
  }
  return m;
}

float max_abs_f32(const float* a, size_t n, size_t* bad) {
  const float m = svd_ops().max_abs(a, n);
  if (m >= 0.0f) return m;
  for (size_t j = 0; j < n; ++j)
    if (!(std::fabs(a[j]) <= 3.4028235e38f)) {
      *bad = j;
      break;
    }
  return -1.0f;
}

int pow2_exponent_for(float max_abs) {
  if (max_abs == 0.0f) return 0;
  int e = 0;
  std::frexp(max_abs, &e);  // max_abs = f 2^e, f in [0.5, 1)
  return std::max(e, -100);
}

Status qr_blocked(size_t m, size_t n, float* a, float* q, float* r, const std::atomic<bool>* cancel) {
  const SvdOps& ops = svd_ops();
  const size_t k = std::min(m, n);
  std::vector<Panel> panels;
  std::vector<float> pt, a2, w, w2, tmp;
  try {
    panels.reserve(k / kNb + 1);
    for (size_t j0 = 0; j0 < k; j0 += kNb) {
      if (cancel && cancel->load()) return Status(Code::kAborted, "qr: aborted");
      Panel p;
      p.j0 = j0;
      p.nb = std::min(kNb, k - j0);
      p.mm = m - j0;
      const size_t nb = p.nb, mm = p.mm;
      // Transposed panel: pt[c * mm + i] = a[j0 + i][j0 + c].
      pt.resize(nb * mm);
      for (size_t i = 0; i < mm; ++i)
        for (size_t c = 0; c < nb; ++c) pt[c * mm + i] = a[(j0 + i) * n + j0 + c];
      std::vector<float> tau(nb);
      for (size_t c = 0; c < nb; ++c) {
        float* x = pt.data() + c * mm + c;
        tau[c] = householder(x, mm - c, ops);
        for (size_t d = c + 1; d < nb; ++d) apply_reflector(x + 1, tau[c], pt.data() + d * mm + c, mm - c, ops);
      }
      // R part back into a, V gathered row-major.
      p.v.assign(mm * nb, 0.0f);
      for (size_t c = 0; c < nb; ++c) {
        for (size_t i = 0; i <= c; ++i) a[(j0 + i) * n + j0 + c] = pt[c * mm + i];
        p.v[c * nb + c] = 1.0f;
        for (size_t i = c + 1; i < mm; ++i) p.v[i * nb + c] = pt[c * mm + i];
      }
      // T: T[i][i] = tau_i, T[0:i, i] = -tau_i T[0:i, 0:i] (V[:, 0:i]^T v_i).
      p.t.assign(nb * nb, 0.0f);
      std::vector<double> g(nb);
      for (size_t i = 0; i < nb; ++i) {
        for (size_t r0 = 0; r0 < i; ++r0) {
          // v_r0 . v_i over rows >= i (v_i is zero above row i, one at row i).
          const float* vr = pt.data() + r0 * mm;
          const float* vi = pt.data() + i * mm;
          g[r0] = vr[i] + (mm > i + 1 ? ops.dot(vr + i + 1, vi + i + 1, mm - i - 1) : 0.0);
        }
        for (size_t r0 = 0; r0 < i; ++r0) {
          double acc = 0.0;
          for (size_t c = r0; c < i; ++c) acc += static_cast<double>(p.t[r0 * nb + c]) * g[c];
          p.t[r0 * nb + i] = static_cast<float>(-static_cast<double>(tau[i]) * acc);
        }
        p.t[i * nb + i] = tau[i];
      }
      // Trailing update of columns j0 + nb .. n.
      const size_t c0 = j0 + nb, n2 = n - c0;
      if (n2 > 0) {
        a2.resize(mm * n2);
        for (size_t i = 0; i < mm; ++i) std::memcpy(a2.data() + i * n2, a + (j0 + i) * n + c0, n2 * sizeof(float));
        WS_RETURN_IF_ERROR(apply_block(p, true, a2.data(), n2, w, w2, tmp, cancel));
        for (size_t i = 0; i < mm; ++i) std::memcpy(a + (j0 + i) * n + c0, a2.data() + i * n2, n2 * sizeof(float));
      }
      panels.push_back(std::move(p));
    }
    for (size_t i = 0; i < k; ++i) {
      std::memset(r + i * n, 0, i * sizeof(float));
      std::memcpy(r + i * n + i, a + i * n + i, (n - i) * sizeof(float));
    }
    if (q) {
      std::memset(q, 0, m * k * sizeof(float));
      for (size_t i = 0; i < k; ++i) q[i * k + i] = 1.0f;
      for (size_t pi = panels.size(); pi-- > 0;) {
        if (cancel && cancel->load()) return Status(Code::kAborted, "qr: aborted");
        const Panel& p = panels[pi];
        const size_t cols = k - p.j0;
        a2.resize(p.mm * cols);
        for (size_t i = 0; i < p.mm; ++i) std::memcpy(a2.data() + i * cols, q + (p.j0 + i) * k + p.j0, cols * sizeof(float));
        WS_RETURN_IF_ERROR(apply_block(p, false, a2.data(), cols, w, w2, tmp, cancel));
        for (size_t i = 0; i < p.mm; ++i) std::memcpy(q + (p.j0 + i) * k + p.j0, a2.data() + i * cols, cols * sizeof(float));
      }
    }
  } catch (const std::bad_alloc&) {
    return oom("its work buffers");
  }
  fix_signs(m, n, k, q, r);
  return Status::ok();
}

Status qr_f32(size_t m, size_t n, const float* a, float* q, float* r, const std::atomic<bool>* cancel) {
  const size_t k = std::min(m, n);
  if (k == 0) return Status::ok();
  size_t bad = 0;
  const float mx = max_abs_f32(a, m * n, &bad);
  if (mx < 0.0f) return Status(Code::kNonFinite, "qr: non-finite value at index " + std::to_string(bad));
  const int e = pow2_exponent_for(mx);
  const float f1 = std::ldexp(1.0f, -e / 2), f2 = std::ldexp(1.0f, -e - (-e / 2));
  std::unique_ptr<float[]> work;
  try {
    work.reset(new float[m * n]);
  } catch (const std::bad_alloc&) {
    return oom("a copy of the matrix");
  }
  for (size_t i = 0; i < m * n; ++i) work[i] = a[i] * f1 * f2;
  WS_RETURN_IF_ERROR(qr_blocked(m, n, work.get(), q, r, cancel));
  const Pow2 back(e);
  for (size_t i = 0; i < k * n; ++i) r[i] = back(r[i]);
  return Status::ok();
}

namespace {

Status qr_ref_impl(size_t m, size_t n, const float* a, float* q, float* r) {
  const size_t k = std::min(m, n);
  if (k == 0) return Status::ok();
  size_t bad = 0;
  const float mx = max_abs_f32(a, m * n, &bad);
  if (mx < 0.0f) return Status(Code::kNonFinite, "qr: non-finite value at index " + std::to_string(bad));
  const int e = pow2_exponent_for(mx);
  // Columns contiguous: at[j * m + i] = a[i][j] * scale.
  std::vector<float> at(m * n), tau(k);
  const Pow2 down(-e);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) at[j * m + i] = down(a[i * n + j]);
  auto dot = [](const float* x, const float* y, size_t len) {
    double s = 0.0;
    for (size_t i = 0; i < len; ++i) s += static_cast<double>(x[i]) * y[i];
    return s;
  };
  for (size_t c = 0; c < k; ++c) {
    float* x = at.data() + c * m + c;
    const size_t len = m - c;
    const double alpha = x[0], sigma2 = dot(x + 1, x + 1, len - 1);
    tau[c] = 0.0f;
    if (sigma2 != 0.0) {
      const double norm = std::sqrt(alpha * alpha + sigma2), beta = alpha >= 0 ? -norm : norm;
      tau[c] = static_cast<float>((beta - alpha) / beta);
      const double inv = 1.0 / (alpha - beta);
      for (size_t i = 1; i < len; ++i) x[i] = static_cast<float>(x[i] * inv);
      x[0] = static_cast<float>(beta);
    }
    for (size_t d = c + 1; d < n; ++d) {
      float* y = at.data() + d * m + c;
      const double w = tau[c] * (y[0] + dot(x + 1, y + 1, len - 1));
      y[0] = static_cast<float>(y[0] - w);
      for (size_t i = 1; i < len; ++i) y[i] = static_cast<float>(y[i] - w * x[i]);
    }
  }
  for (size_t i = 0; i < k; ++i)
    for (size_t j = 0; j < n; ++j) r[i * n + j] = j < i ? 0.0f : at[j * m + i];
  // Q = H_1 ... H_k [I; 0], applied backwards, one column of Q at a time.
  std::vector<float> col(m);
  for (size_t j = 0; j < k; ++j) {
    std::fill(col.begin(), col.end(), 0.0f);
    col[j] = 1.0f;
    for (size_t c = std::min(j + 1, k); c-- > 0;) {
      const float* v = at.data() + c * m + c;
      float* y = col.data() + c;
      const size_t len = m - c;
      const double w = tau[c] * (y[0] + dot(v + 1, y + 1, len - 1));
      y[0] = static_cast<float>(y[0] - w);
      for (size_t i = 1; i < len; ++i) y[i] = static_cast<float>(y[i] - w * v[i]);
    }
    for (size_t i = 0; i < m; ++i) q[i * k + j] = col[i];
  }
  fix_signs(m, n, k, q, r);
  const Pow2 back(e);
  for (size_t i = 0; i < k * n; ++i) r[i] = back(r[i]);
  return Status::ok();
}

}  // namespace

Status qr_f32_ref(size_t m, size_t n, const float* a, float* q, float* r) {
  try {
    return qr_ref_impl(m, n, a, q, r);
  } catch (const std::bad_alloc&) {
    return oom("its work buffers");
  }
}

}  // namespace ws
