// SPDX-License-Identifier: MIT
// Bindings for pruning masks and their application.
#include <cmath>
#include <string>

#include "common.h"
#include "file.h"
#include "weightsmith/sparsity.h"

namespace ws::binding {

namespace {

struct MaskArgs {
  MaskSpec spec;
  Bytes w, bits, norms, base;
};

uint64_t get_u64(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw_type(v.Env(), std::string("The \"") + name + "\" option must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != std::floor(d)) throw_range(v.Env(), std::string("The \"") + name + "\" option must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

// (w, dtype, rows, cols, { score, norms?, seed?, perRow?, prune?, n?, m?, base? }, bits Uint8Array, ...)
MaskArgs read_mask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MaskArgs a;
  a.w = get_bytes(info[0], "w");
  a.spec.dtype = get_dtype(info[1], "dtype");
  a.spec.rows = get_size(info[2], "rows");
  a.spec.cols = get_size(info[3], "cols");
  if (!info[4].IsObject()) throw_type(env, "The \"options\" argument must be an object");
  const Napi::Object o = info[4].As<Napi::Object>();
  const std::string score = o.Get("score").IsString() ? o.Get("score").As<Napi::String>().Utf8Value() : "";
  if (score == "magnitude") a.spec.score = ScoreKind::kMagnitude;
  else if (score == "wanda") a.spec.score = ScoreKind::kWanda;
  else if (score == "random") a.spec.score = ScoreKind::kRandom;
  else throw_type(env, "The \"score\" option must be 'magnitude', 'wanda' or 'random'");
  if (o.Has("norms") && !o.Get("norms").IsUndefined()) {
    const Napi::Value nv = o.Get("norms");
    if (!nv.IsTypedArray() || nv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw_type(env, "The \"norms\" option must be a Float32Array");
    a.norms = get_bytes(nv, "norms");
    if (a.norms.length / 4 != a.spec.cols) throw_range(env, "norms must hold one value per column");
    a.spec.norms = reinterpret_cast<const float*>(a.norms.data);
  }
  if (o.Has("seed") && !o.Get("seed").IsUndefined()) a.spec.seed = get_u64(o.Get("seed"), "seed");
  a.spec.per_row = !o.Has("perRow") || o.Get("perRow").ToBoolean().Value();
  if (o.Has("prune") && !o.Get("prune").IsUndefined()) a.spec.prune = get_u64(o.Get("prune"), "prune");
  if (o.Has("n") && !o.Get("n").IsUndefined()) a.spec.n = static_cast<uint32_t>(get_u64(o.Get("n"), "n"));
  if (o.Has("m") && !o.Get("m").IsUndefined()) a.spec.m = static_cast<uint32_t>(get_u64(o.Get("m"), "m"));
  const size_t mask_bytes = a.spec.rows * mask_row_bytes(a.spec.cols);
  if (o.Has("base") && !o.Get("base").IsUndefined() && !o.Get("base").IsNull()) {
    a.base = get_bytes(o.Get("base"), "base");
    if (a.base.length < mask_bytes) throw_range(env, "the base mask is too small");
    a.spec.base = a.base.data;
  }
  a.bits = get_bytes(info[5], "bits");
  if (dtype_size(a.spec.dtype) == 0 || a.w.length / dtype_size(a.spec.dtype) < a.spec.rows * a.spec.cols)
    throw_range(env, "The \"w\" buffer is smaller than rows x cols");
  if (a.bits.length < mask_bytes) throw_range(env, "The \"bits\" buffer is too small");
  return a;
}

struct ApplyArgs {
  Bytes w, bits, out;
  size_t es = 0, rows = 0, cols = 0;
};

// (w, elemSize, rows, cols, bits, out, ...)
ApplyArgs read_apply(const Napi::CallbackInfo& info) {
  ApplyArgs a;
  a.w = get_bytes(info[0], "w");
  a.es = get_size(info[1], "elemSize");
  a.rows = get_size(info[2], "rows");
  a.cols = get_size(info[3], "cols");
  a.bits = get_bytes(info[4], "bits");
  a.out = get_bytes(info[5], "out");
  if (a.w.length < a.rows * a.cols * a.es || a.out.length < a.rows * a.cols * a.es || a.bits.length < a.rows * mask_row_bytes(a.cols))
    throw_range(info.Env(), "a buffer is too small for rows x cols");
  return a;
}

}  // namespace

// sparsityMaskSync(w, dtype, rows, cols, options, bits, backend?: 'ref' | 'auto')
Napi::Value SparsityMaskSync(const Napi::CallbackInfo& info) {
  const MaskArgs a = read_mask(info);
  const bool ref = info[6].IsString() && info[6].As<Napi::String>().Utf8Value() == "ref";
  Status s = ref ? sparsity_mask_ref(a.spec, a.w.data, a.bits.data) : sparsity_mask(a.spec, a.w.data, a.bits.data);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// sparsityMask(w, dtype, rows, cols, options, bits, owners, token) -> Promise<void>
Napi::Value SparsityMask(const Napi::CallbackInfo& info) {
  const MaskArgs a = read_mask(info);
  std::vector<Napi::Value> keep = {info[0], info[5]};
  const Napi::Object o = info[4].As<Napi::Object>();
  if (a.spec.norms) keep.push_back(o.Get("norms"));
  if (a.spec.base) keep.push_back(o.Get("base"));
  return StatusWorker::Start(
      info.Env(), [a](const std::atomic<bool>* cancel) { return sparsity_mask(a.spec, a.w.data, a.bits.data, cancel); }, keep,
      pin_owners(info[6]), get_abort_flag(info[7]));
}

// sparsityApplySync(w, elemSize, rows, cols, bits, out)
Napi::Value SparsityApplySync(const Napi::CallbackInfo& info) {
  const ApplyArgs a = read_apply(info);
  Status s = sparsity_apply(a.w.data, a.es, a.rows, a.cols, a.bits.data, a.out.data);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// sparsityApply(w, elemSize, rows, cols, bits, out, owners, token) -> Promise<void>
Napi::Value SparsityApply(const Napi::CallbackInfo& info) {
  const ApplyArgs a = read_apply(info);
  return StatusWorker::Start(
      info.Env(),
      [a](const std::atomic<bool>* cancel) { return sparsity_apply(a.w.data, a.es, a.rows, a.cols, a.bits.data, a.out.data, cancel); },
      {info[0], info[4], info[5]}, pin_owners(info[6]), get_abort_flag(info[7]));
}

// maskRowCounts(bits, rows, cols, counts Uint32Array)
Napi::Value MaskRowCounts(const Napi::CallbackInfo& info) {
  const Bytes bits = get_bytes(info[0], "bits");
  const size_t rows = get_size(info[1], "rows"), cols = get_size(info[2], "cols");
  const Bytes counts = get_bytes(info[3], "counts");
  if (bits.length < rows * mask_row_bytes(cols) || counts.length < rows * 4) throw_range(info.Env(), "a buffer is too small");
  mask_row_counts(bits.data, rows, cols, reinterpret_cast<uint32_t*>(counts.data));
  return info.Env().Undefined();
}

}  // namespace ws::binding
