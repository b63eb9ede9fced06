// SPDX-License-Identifier: MIT
// Bindings for dense linear algebra (sgemm).
#include <string>

#include "common.h"
#include "file.h"
#include "weightsmith/gemm.h"

namespace ws::binding {

namespace {

struct GemmArgs {
  Bytes a, b, c;
  size_t m = 0, n = 0, k = 0;
  bool ta = false, tb = false;
};

bool is_f32(const Napi::Value& v) { return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array; }

// (a, b, m, n, k, transA, transB, out, ...): Float32Arrays of m*k, k*n and m*n elements.
GemmArgs read_gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (int i : {0, 1, 7})
    if (!is_f32(info[i])) throw_type(env, "matmul takes Float32Arrays");
  GemmArgs g;
  g.a = get_bytes(info[0], "a");
  g.b = get_bytes(info[1], "b");
  g.m = get_size(info[2], "m");
  g.n = get_size(info[3], "n");
  g.k = get_size(info[4], "k");
  g.ta = info[5].ToBoolean().Value();
  g.tb = info[6].ToBoolean().Value();
  g.c = get_bytes(info[7], "out");
  if (g.a.length / 4 < g.m * g.k || g.b.length / 4 < g.k * g.n || g.c.length / 4 < g.m * g.n)
    throw_range(env, "a buffer is smaller than its matrix");
  return g;
}

Status run(const GemmArgs& g, const std::atomic<bool>* cancel, bool ref) {
  const auto* a = reinterpret_cast<const float*>(g.a.data);
  const auto* b = reinterpret_cast<const float*>(g.b.data);
  auto* c = reinterpret_cast<float*>(g.c.data);
  return ref ? sgemm_ref(g.ta, g.tb, g.m, g.n, g.k, a, b, c) : sgemm(g.ta, g.tb, g.m, g.n, g.k, a, b, c, cancel);
}

}  // namespace

// matmulSync(a, b, m, n, k, transA, transB, out, backend?: 'ref' | 'auto')
Napi::Value MatmulSync(const Napi::CallbackInfo& info) {
  const GemmArgs g = read_gemm(info);
  const bool ref = info[8].IsString() && info[8].As<Napi::String>().Utf8Value() == "ref";
  Status s = run(g, nullptr, ref);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// matmul(a, b, m, n, k, transA, transB, out, owners, token) -> Promise<void>
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const GemmArgs g = read_gemm(info);
  return StatusWorker::Start(
      info.Env(), [g](const std::atomic<bool>* cancel) { return run(g, cancel, false); }, {info[0], info[1], info[7]},
      pin_owners(info[8]), get_abort_flag(info[9]));
}

}  // namespace ws::binding
