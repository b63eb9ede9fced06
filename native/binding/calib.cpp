// SPDX-License-Identifier: MIT
// Bindings for the calibration statistics (Calibrator): one batch update, sync and async, and the Gram
// matrix alone (for tests and benchmarks).
#include <string>

#include "common.h"
#include "file.h"
#include "weightsmith/calib.h"

namespace ws::binding {

namespace {

bool is_array_of(const Napi::Value& v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

bool is_ref(const Napi::Value& v) { return v.IsString() && v.As<Napi::String>().Utf8Value() == "ref"; }

struct AddArgs {
  Bytes x, sums, h;
  DType dtype = DType::kF32;
  size_t tokens = 0, in = 0, seen = 0;
  bool check_finite = true;
};

// (x, dtype, tokens, in, seen, sums Float64Array, hessian Float32Array | null, checkFinite, ...)
AddArgs read_add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddArgs a;
  a.x = get_bytes(info[0], "x");
  a.dtype = get_dtype(info[1], "dtype");
  a.tokens = get_size(info[2], "tokens");
  a.in = get_size(info[3], "in");
  a.seen = get_size(info[4], "seen");
  if (!is_array_of(info[5], napi_float64_array)) throw_type(env, "The \"sums\" argument must be a Float64Array");
  a.sums = get_bytes(info[5], "sums");
  if (!info[6].IsNull() && !info[6].IsUndefined()) {
    if (!is_array_of(info[6], napi_float32_array)) throw_type(env, "The \"hessian\" argument must be a Float32Array or null");
    a.h = get_bytes(info[6], "hessian");
  }
  a.check_finite = info[7].ToBoolean().Value();
  const size_t es = dtype_size(a.dtype);
  if (es == 0 || (a.in != 0 && a.x.length / es / a.in < a.tokens)) throw_range(env, "the x buffer is too small for [tokens, in]");
  if (a.sums.length / 8 < a.in) throw_range(env, "the sums buffer is too small for in");
  if (a.h.data != nullptr && (a.in != 0 && a.h.length / 4 / a.in < a.in)) throw_range(env, "the hessian buffer is too small for [in, in]");
  return a;
}

Status run_add(const AddArgs& a, const std::atomic<bool>* cancel, bool ref) {
  auto* sums = reinterpret_cast<double*>(a.sums.data);
  auto* h = reinterpret_cast<float*>(a.h.data);
  if (ref) return calib_add_ref(a.x.data, a.dtype, a.tokens, a.in, a.seen, sums, h, a.check_finite);
  return calib_add(a.x.data, a.dtype, a.tokens, a.in, a.seen, sums, h, a.check_finite, cancel);
}

}  // namespace

// calibAddSync(x, dtype, tokens, in, seen, sums, hessian | null, checkFinite, backend?: 'ref' | 'auto')
Napi::Value CalibAddSync(const Napi::CallbackInfo& info) {
  const AddArgs a = read_add(info);
  Status s = run_add(a, nullptr, is_ref(info[8]));
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// calibAdd(x, dtype, tokens, in, seen, sums, hessian | null, checkFinite, owners, token) -> Promise<void>
Napi::Value CalibAdd(const Napi::CallbackInfo& info) {
  const AddArgs a = read_add(info);
  std::vector<Napi::Value> keep{info[0], info[5]};
  if (a.h.data != nullptr) keep.push_back(info[6]);
  return StatusWorker::Start(
      info.Env(), [a](const std::atomic<bool>* cancel) { return run_add(a, cancel, false); }, keep, pin_owners(info[8]),
      get_abort_flag(info[9]));
}

// calibGramSync(x, dtype, tokens, in, g Float32Array, backend?: 'ref' | 'auto'): g = x^T x.
Napi::Value CalibGramSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Bytes x = get_bytes(info[0], "x");
  const DType dtype = get_dtype(info[1], "dtype");
  const size_t tokens = get_size(info[2], "tokens"), in = get_size(info[3], "in");
  if (!is_array_of(info[4], napi_float32_array)) throw_type(env, "The \"g\" argument must be a Float32Array");
  const Bytes g = get_bytes(info[4], "g");
  const size_t es = dtype_size(dtype);
  if (es == 0 || (in != 0 && (x.length / es / in < tokens || g.length / 4 / in < in)))
    throw_range(env, "a buffer is too small for [tokens, in]");
  auto* out = reinterpret_cast<float*>(g.data);
  Status s = is_ref(info[5]) ? calib_gram_ref(x.data, dtype, tokens, in, out) : calib_gram(x.data, dtype, tokens, in, out);
  if (!s.is_ok()) throw_status(env, s);
  return env.Undefined();
}

}  // namespace ws::binding
