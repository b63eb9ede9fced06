// SPDX-License-Identifier: MIT
// Bindings for QR and the SVDs (weightsmith/svd.h). Every buffer is a Float32Array checked against its matrix size;
// the TypeScript layer (lib/svd.ts) validates shapes and options and allocates the outputs.
#include <algorithm>
#include <string>

#include "common.h"
#include "file.h"
#include "weightsmith/svd.h"

namespace ws::binding {

namespace {

bool is_f32(const Napi::Value& v) { return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array; }

float* f32(const Bytes& b) { return reinterpret_cast<float*>(b.data); }

Bytes get_f32(const Napi::CallbackInfo& info, int i, const char* name, size_t count) {
  if (!is_f32(info[i])) throw_type(info.Env(), std::string("The \"") + name + "\" argument must be a Float32Array");
  Bytes b = get_bytes(info[i], name);
  if (b.length / 4 < count) throw_range(info.Env(), std::string("the \"") + name + "\" buffer is smaller than its matrix");
  return b;
}

bool want_ref(const Napi::Value& v) { return v.IsString() && v.As<Napi::String>().Utf8Value() == "ref"; }

struct QrArgs {
  Bytes a, q, r;
  size_t m = 0, n = 0;
};

// (a, m, n, q, r, ...)
QrArgs read_qr(const Napi::CallbackInfo& info) {
  QrArgs g;
  g.m = get_size(info[1], "m");
  g.n = get_size(info[2], "n");
  const size_t k = std::min(g.m, g.n);
  g.a = get_f32(info, 0, "a", g.m * g.n);
  g.q = get_f32(info, 3, "q", g.m * k);
  g.r = get_f32(info, 4, "r", k * g.n);
  return g;
}

struct SvdArgs {
  Bytes a, u, s, vt;
  size_t batch = 1, m = 0, n = 0, rank = 0;
};

// (a, batch, m, n, rank, u, s, vt, ...); rank 0 for the batched call.
SvdArgs read_svd(const Napi::CallbackInfo& info) {
  SvdArgs g;
  g.batch = get_size(info[1], "batch");
  g.m = get_size(info[2], "m");
  g.n = get_size(info[3], "n");
  g.rank = get_size(info[4], "rank");
  const size_t k = std::min(g.m, g.n), r = g.rank ? g.rank : k;
  g.a = get_f32(info, 0, "a", g.batch * g.m * g.n);
  g.u = get_f32(info, 5, "u", g.batch * g.m * r);
  g.s = get_f32(info, 6, "s", g.batch * r);
  g.vt = get_f32(info, 7, "vt", g.batch * r * g.n);
  return g;
}

Status run_svd(const SvdArgs& g, const std::atomic<bool>* cancel, bool ref) {
  if (ref) {
    if (g.batch != 1 || (g.rank && g.rank != std::min(g.m, g.n)))
      return Status(Code::kInvalidArgType, "the reference SVD takes one matrix and the full rank");
    return svd_f32_ref(g.m, g.n, f32(g.a), f32(g.u), f32(g.s), f32(g.vt));
  }
  if (g.rank) return svd_f32(g.m, g.n, f32(g.a), g.rank, f32(g.u), f32(g.s), f32(g.vt), cancel);
  return svd_batched_f32(g.batch, g.m, g.n, f32(g.a), f32(g.u), f32(g.s), f32(g.vt), cancel);
}

}  // namespace

// qrSync(a, m, n, q, r, backend?: 'ref' | 'auto')
Napi::Value QrSync(const Napi::CallbackInfo& info) {
  const QrArgs g = read_qr(info);
  Status s = want_ref(info[5]) ? qr_f32_ref(g.m, g.n, f32(g.a), f32(g.q), f32(g.r))
                               : qr_f32(g.m, g.n, f32(g.a), f32(g.q), f32(g.r));
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// qr(a, m, n, q, r, owners, token) -> Promise<void>
Napi::Value Qr(const Napi::CallbackInfo& info) {
  const QrArgs g = read_qr(info);
  return StatusWorker::Start(
      info.Env(), [g](const std::atomic<bool>* cancel) { return qr_f32(g.m, g.n, f32(g.a), f32(g.q), f32(g.r), cancel); },
      {info[0], info[3], info[4]}, pin_owners(info[5]), get_abort_flag(info[6]));
}

// svdSync(a, batch, m, n, rank, u, s, vt, backend?): rank >= 1 for one matrix (svd), 0 for svdBatched.
Napi::Value SvdSync(const Napi::CallbackInfo& info) {
  const SvdArgs g = read_svd(info);
  Status s = run_svd(g, nullptr, want_ref(info[8]));
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// svd(a, batch, m, n, rank, u, s, vt, owners, token) -> Promise<void>
Napi::Value Svd(const Napi::CallbackInfo& info) {
  const SvdArgs g = read_svd(info);
  return StatusWorker::Start(
      info.Env(), [g](const std::atomic<bool>* cancel) { return run_svd(g, cancel, false); },
      {info[0], info[5], info[6], info[7]}, pin_owners(info[8]), get_abort_flag(info[9]));
}

// svdSetMaxSweeps(n) -> previous cap (tests only: drives the ERR_NO_CONVERGENCE path; 0 restores the default).
Napi::Value SvdSetMaxSweeps(const Napi::CallbackInfo& info) {
  const size_t n = get_size(info[0], "n");
  return Napi::Number::New(info.Env(), svd_set_max_sweeps(static_cast<int>(std::min<size_t>(n, 1000))));
}

// svdSetScaleGuard(e) -> previous exponent (tests only: scales below 2^-e move into their rows; 0 restores 30).
Napi::Value SvdSetScaleGuard(const Napi::CallbackInfo& info) {
  const size_t e = get_size(info[0], "e");
  return Napi::Number::New(info.Env(), svd_set_scale_guard(static_cast<int>(std::min<size_t>(e, 60))));
}

}  // namespace ws::binding
