// SPDX-License-Identifier: MIT
// Bindings for pruning masks and their application.
#include <cmath>
#include <string>

#include "common.h"
#include "file.h"
#include "weightsmith/sparse-formats.h"
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

namespace {

SparseFormat get_format(const Napi::Value& v) {
  const std::string f = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (f == "sparse-bitmask") return SparseFormat::kBitmask;
  if (f == "sparse-24-bitmask") return SparseFormat::kBitmask24;
  if (f == "nv24") return SparseFormat::kNv24;
  throw_type(v.Env(), "The \"format\" argument must be 'sparse-bitmask', 'sparse-24-bitmask' or 'nv24'");
}

const uint8_t* optional_bytes(const Napi::Value& v, const char* name, size_t need) {
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  const Bytes b = get_bytes(v, name);
  if (b.length < need) throw_range(v.Env(), std::string("The \"") + name + "\" buffer is too small");
  return b.data;
}

}  // namespace

// sparseCountRows(w, elemSize, rows, cols) -> Float64Array(rows) of non-zero counts
Napi::Value SparseCountRows(const Napi::CallbackInfo& info) {
  const Bytes w = get_bytes(info[0], "w");
  const size_t es = get_size(info[1], "elemSize"), rows = get_size(info[2], "rows"), cols = get_size(info[3], "cols");
  if (w.length < rows * cols * es) throw_range(info.Env(), "The \"w\" buffer is smaller than rows x cols");
  std::vector<uint64_t> counts(rows);
  Status s = sparse_count_rows(w.data, es, rows, cols, counts.data());
  if (!s.is_ok()) throw_status(info.Env(), s);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), rows);
  for (size_t r = 0; r < rows; ++r) out[r] = static_cast<double>(counts[r]);
  return out;
}

// sparseCompress(format, w, elemSize, rows, cols, rowOffsets Float64Array | null, values, bitmask | null, meta | null)
Napi::Value SparseCompress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SparseFormat f = get_format(info[0]);
  const Bytes w = get_bytes(info[1], "w");
  const size_t es = get_size(info[2], "elemSize"), rows = get_size(info[3], "rows"), cols = get_size(info[4], "cols");
  if (w.length < rows * cols * es) throw_range(env, "The \"w\" buffer is smaller than rows x cols");
  std::vector<uint64_t> offsets;
  uint64_t total = rows * (cols / 2);
  if (f == SparseFormat::kBitmask) {
    if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw_type(env, "rowOffsets must be a Float64Array");
    Napi::Float64Array o = info[5].As<Napi::Float64Array>();
    if (o.ElementLength() < rows + 1) throw_range(env, "rowOffsets must hold rows + 1 values");
    offsets.resize(rows + 1);
    for (size_t r = 0; r <= rows; ++r) offsets[r] = static_cast<uint64_t>(o[r]);
    total = offsets[rows];
  }
  const Bytes values = get_bytes(info[6], "values");
  if (values.length < total * es) throw_range(env, "The \"values\" buffer is too small");
  auto* bitmask = const_cast<uint8_t*>(optional_bytes(info[7], "bitmask", f == SparseFormat::kNv24 ? 0 : rows * ((cols + 7) / 8)));
  auto* meta = reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(optional_bytes(info[8], "meta", f == SparseFormat::kNv24 ? rows * ((cols + 15) / 16) * 2 : 0)));
  if ((f != SparseFormat::kNv24 && !bitmask) || (f == SparseFormat::kNv24 && !meta)) throw_type(env, "missing bitmask or meta buffer");
  Status s = sparse_compress(f, w.data, es, rows, cols, offsets.data(), values.data, bitmask, meta);
  if (!s.is_ok()) throw_status(env, s);
  return env.Undefined();
}

// sparseDecompress(format, values, nValues, bitmask | null, meta | null, elemSize, rows, cols, out)
Napi::Value SparseDecompress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SparseFormat f = get_format(info[0]);
  const Bytes values = get_bytes(info[1], "values");
  const size_t nv = get_size(info[2], "nValues");
  const size_t es = get_size(info[5], "elemSize"), rows = get_size(info[6], "rows"), cols = get_size(info[7], "cols");
  const uint8_t* bitmask = optional_bytes(info[3], "bitmask", f == SparseFormat::kNv24 ? 0 : rows * ((cols + 7) / 8));
  const auto* meta = reinterpret_cast<const uint16_t*>(optional_bytes(info[4], "meta", f == SparseFormat::kNv24 ? rows * ((cols + 15) / 16) * 2 : 0));
  if ((f != SparseFormat::kNv24 && !bitmask) || (f == SparseFormat::kNv24 && !meta)) throw_type(env, "missing bitmask or meta buffer");
  const Bytes out = get_bytes(info[8], "out");
  if (values.length < nv * es || out.length < rows * cols * es) throw_range(env, "a buffer is too small");
  Status s = sparse_decompress(f, values.data, nv, bitmask, meta, es, rows, cols, out.data);
  if (!s.is_ok()) throw_status(env, s);
  return env.Undefined();
}

}  // namespace ws::binding
