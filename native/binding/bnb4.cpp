// SPDX-License-Identifier: MIT
// Bindings for bitsandbytes' 4-bit blockwise quantization (NF4, FP4) and the 8-bit blockwise quantizer of its
// double quantization.
#include <cstring>
#include <string>

#include "common.h"
#include "file.h"
#include "weightsmith/bnb4.h"

namespace ws::binding {

namespace {

bool is_f32_array(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array;
}

Bnb4Type get_type(const Napi::Value& v) {
  const std::string t = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (t == "nf4") return Bnb4Type::kNf4;
  if (t == "fp4") return Bnb4Type::kFp4;
  throw_type(v.Env(), "The \"type\" argument must be 'nf4' or 'fp4'");
}

bool is_ref(const Napi::Value& v) { return v.IsString() && v.As<Napi::String>().Utf8Value() == "ref"; }

struct QuantArgs {
  Bnb4Type type = Bnb4Type::kNf4;
  Bytes x, packed, absmax;
  DType dtype = DType::kF32;
  size_t n = 0, blocksize = 0;
  bool check_finite = true;
};

// (type, x, dtype, n, blocksize, packed Uint8Array, absmax Float32Array, checkFinite, ...)
QuantArgs read_quant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QuantArgs a;
  a.type = get_type(info[0]);
  a.x = get_bytes(info[1], "x");
  a.dtype = get_dtype(info[2], "dtype");
  a.n = get_size(info[3], "n");
  a.blocksize = get_size(info[4], "blocksize");
  a.packed = get_bytes(info[5], "packed");
  if (!is_f32_array(info[6])) throw_type(env, "The \"absmax\" argument must be a Float32Array");
  a.absmax = get_bytes(info[6], "absmax");
  a.check_finite = info[7].ToBoolean().Value();
  if (a.blocksize == 0) throw_range(env, "The \"blocksize\" argument must be positive");
  if (dtype_size(a.dtype) == 0 || a.x.length / dtype_size(a.dtype) < a.n || a.packed.length < a.n / 2 + a.n % 2 ||
      a.absmax.length / 4 < (a.n + a.blocksize - 1) / a.blocksize)
    throw_range(env, "a buffer is too small for n elements");
  return a;
}

Status run_quant(const QuantArgs& a, const std::atomic<bool>* cancel, bool ref) {
  auto* absmax = reinterpret_cast<float*>(a.absmax.data);
  if (ref) return bnb4_quantize_ref(a.type, a.x.data, a.dtype, a.n, a.blocksize, a.packed.data, absmax, a.check_finite);
  return bnb4_quantize(a.type, a.x.data, a.dtype, a.n, a.blocksize, a.packed.data, absmax, a.check_finite, cancel);
}

struct DequantArgs {
  Bnb4Type type = Bnb4Type::kNf4;
  Bytes packed, absmax, out;
  size_t n = 0, blocksize = 0;
};

// (type, packed, absmax Float32Array, n, blocksize, out Float32Array, ...)
DequantArgs read_dequant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DequantArgs a;
  a.type = get_type(info[0]);
  a.packed = get_bytes(info[1], "packed");
  if (!is_f32_array(info[2])) throw_type(env, "The \"absmax\" argument must be a Float32Array");
  a.absmax = get_bytes(info[2], "absmax");
  a.n = get_size(info[3], "n");
  a.blocksize = get_size(info[4], "blocksize");
  if (!is_f32_array(info[5])) throw_type(env, "The \"out\" argument must be a Float32Array");
  a.out = get_bytes(info[5], "out");
  if (a.blocksize == 0) throw_range(env, "The \"blocksize\" argument must be positive");
  if (a.packed.length < a.n / 2 + a.n % 2 || a.absmax.length / 4 < (a.n + a.blocksize - 1) / a.blocksize || a.out.length / 4 < a.n)
    throw_range(env, "a buffer is too small for n elements");
  return a;
}

Status run_dequant(const DequantArgs& a, const std::atomic<bool>* cancel, bool ref) {
  const auto* absmax = reinterpret_cast<const float*>(a.absmax.data);
  auto* out = reinterpret_cast<float*>(a.out.data);
  if (ref) return bnb4_dequantize_ref(a.type, a.packed.data, absmax, a.n, a.blocksize, out);
  return bnb4_dequantize(a.type, a.packed.data, absmax, a.n, a.blocksize, out, cancel);
}

}  // namespace

// bnb4QuantizeSync(type, x, dtype, n, blocksize, packed, absmax, checkFinite, backend?: 'ref' | 'auto')
Napi::Value Bnb4QuantizeSync(const Napi::CallbackInfo& info) {
  const QuantArgs a = read_quant(info);
  Status s = run_quant(a, nullptr, is_ref(info[8]));
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// bnb4Quantize(type, x, dtype, n, blocksize, packed, absmax, checkFinite, owners, token) -> Promise<void>
Napi::Value Bnb4Quantize(const Napi::CallbackInfo& info) {
  const QuantArgs a = read_quant(info);
  return StatusWorker::Start(
      info.Env(), [a](const std::atomic<bool>* cancel) { return run_quant(a, cancel, false); }, {info[1], info[5], info[6]},
      pin_owners(info[8]), get_abort_flag(info[9]));
}

// bnb4DequantizeSync(type, packed, absmax, n, blocksize, out, backend?: 'ref' | 'auto')
Napi::Value Bnb4DequantizeSync(const Napi::CallbackInfo& info) {
  const DequantArgs a = read_dequant(info);
  Status s = run_dequant(a, nullptr, is_ref(info[6]));
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// bnb4Dequantize(type, packed, absmax, n, blocksize, out, owners, token) -> Promise<void>
Napi::Value Bnb4Dequantize(const Napi::CallbackInfo& info) {
  const DequantArgs a = read_dequant(info);
  return StatusWorker::Start(
      info.Env(), [a](const std::atomic<bool>* cancel) { return run_dequant(a, cancel, false); }, {info[1], info[2], info[5]},
      pin_owners(info[6]), get_abort_flag(info[7]));
}

// bnb4Table(type) -> Float32Array(16): the code table, index -> value.
Napi::Value Bnb4Table(const Napi::CallbackInfo& info) {
  const float* t = bnb4_table(get_type(info[0]));
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), 16);
  std::memcpy(out.Data(), t, 16 * sizeof(float));
  return out;
}

// bnbDynamicMap() -> Float32Array(256)
Napi::Value BnbDynamicMap(const Napi::CallbackInfo& info) {
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), 256);
  std::memcpy(out.Data(), bnb_dynamic_map(), 256 * sizeof(float));
  return out;
}

// blockwise8Quantize(x Float32Array, blocksize, code Float32Array(256), q Uint8Array, absmax Float32Array)
// blockwise8Dequantize(q Uint8Array, absmax Float32Array, blocksize, code Float32Array(256), out Float32Array)
Napi::Value Blockwise8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool dequant = info.Data() != nullptr;
  const int xi = dequant ? 4 : 0, qi = dequant ? 0 : 3, ai = dequant ? 1 : 4, ci = dequant ? 3 : 2, bi = dequant ? 2 : 1;
  for (int k : {xi, ai, ci})
    if (!is_f32_array(info[k])) throw_type(env, "blockwise8: values, absmax and code must be Float32Arrays");
  const Bytes x = get_bytes(info[xi], "x"), q = get_bytes(info[qi], "q"), absmax = get_bytes(info[ai], "absmax"),
              code = get_bytes(info[ci], "code");
  const size_t bs = get_size(info[bi], "blocksize");
  const size_t n = x.length / 4;
  if (bs == 0) throw_range(env, "The \"blocksize\" argument must be positive");
  if (code.length != 256 * 4) throw_range(env, "The \"code\" table must hold 256 values");
  if (q.length != n || absmax.length / 4 < (n + bs - 1) / bs) throw_range(env, "blockwise8: buffer sizes do not match");
  const auto* c = reinterpret_cast<const float*>(code.data);
  if (dequant) blockwise8_dequantize(q.data, reinterpret_cast<const float*>(absmax.data), n, bs, c, reinterpret_cast<float*>(x.data));
  else blockwise8_quantize(reinterpret_cast<const float*>(x.data), n, bs, c, q.data, reinterpret_cast<float*>(absmax.data));
  return env.Undefined();
}

// bnb4DoubleQuantize(absmax Float32Array, code Float32Array(256), q Uint8Array, nested Float32Array) -> offset
Napi::Value Bnb4DoubleQuantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (int k : {0, 1, 3})
    if (!is_f32_array(info[k])) throw_type(env, "bnb4DoubleQuantize: absmax, code and nested must be Float32Arrays");
  const Bytes a = get_bytes(info[0], "absmax"), code = get_bytes(info[1], "code"), q = get_bytes(info[2], "q"),
              nested = get_bytes(info[3], "nested");
  const size_t n = a.length / 4;
  if (code.length != 256 * 4) throw_range(env, "The \"code\" table must hold 256 values");
  if (q.length != n || nested.length / 4 < (n + 255) / 256) throw_range(env, "bnb4DoubleQuantize: buffer sizes do not match");
  float offset = 0.0f;
  Status s = bnb4_double_quantize(reinterpret_cast<const float*>(a.data), n, reinterpret_cast<const float*>(code.data), q.data,
                                  reinterpret_cast<float*>(nested.data), &offset);
  if (!s.is_ok()) throw_status(env, s);
  return Napi::Number::New(env, offset);
}

}  // namespace ws::binding
