// SPDX-License-Identifier: MIT
// Bindings for ggml block quantization and dequantization.
#include <cmath>
#include <cstring>
#include <vector>

#include "common.h"
#include "file.h"
#include "weightsmith/compare.h"
#include "weightsmith/fp8-quant.h"
#include "weightsmith/int-quant.h"
#include "weightsmith/ggml-quants.h"
#include "weightsmith/ggml-types.h"
#include "weightsmith/thread-pool.h"

namespace ws::binding {

namespace {

struct DequantArgs {
  uint32_t type = 0;
  Bytes blocks;
  Bytes out;
  size_t n = 0;
};

// (blocks, ggmlTypeId, out Float32Array, n): checks both buffers hold n elements.
DequantArgs read_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DequantArgs a;
  a.blocks = get_bytes(info[0], "blocks");
  a.type = static_cast<uint32_t>(get_size(info[1], "type"));
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(env, "The \"out\" argument must be a Float32Array");
  a.out = get_bytes(info[2], "out");
  a.n = get_size(info[3], "n");
  const GgmlTypeInfo* t = ggml_type_info(a.type);
  if (t == nullptr || !ggml_can_dequantize(a.type)) throw_status(env, Status(Code::kDtype, "unsupported ggml type"));
  if (a.n % t->block_size != 0) throw_status(env, Status(Code::kShape, "n is not a whole number of blocks"));
  if (a.n / t->block_size * t->type_size > a.blocks.length) throw_range(env, "The \"blocks\" buffer holds fewer than n elements");
  if (a.n * 4 > a.out.length) throw_range(env, "The \"out\" buffer holds fewer than n elements");
  return a;
}

}  // namespace

// dequantizeGgmlSync(blocks, type, out, n, backend?: 'ref' | 'auto')
Napi::Value DequantizeGgmlSync(const Napi::CallbackInfo& info) {
  DequantArgs a = read_args(info);
  const bool ref = info[4].IsString() && info[4].As<Napi::String>().Utf8Value() == "ref";
  auto* out = reinterpret_cast<float*>(a.out.data);
  Status s = ref ? ggml_dequantize_ref(a.type, a.blocks.data, out, a.n) : ggml_dequantize(a.type, a.blocks.data, out, a.n);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// dequantizeGgml(blocks, type, out, n, owners, token) -> Promise<void>
Napi::Value DequantizeGgml(const Napi::CallbackInfo& info) {
  DequantArgs a = read_args(info);
  return StatusWorker::Start(
      info.Env(),
      [a](const std::atomic<bool>* cancel) {
        return ggml_dequantize(a.type, a.blocks.data, reinterpret_cast<float*>(a.out.data), a.n, cancel);
      },
      {info[0], info[2]}, pin_owners(info[4]), get_abort_flag(info[5]));
}

namespace {

struct QuantArgs {
  uint32_t type = 0;
  const float* x = nullptr;
  Bytes out;
  size_t n = 0;
  bool check_finite = true;
};

// (x Float32Array, ggmlTypeId, out Uint8Array, n, checkFinite)
QuantArgs read_quant_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QuantArgs a;
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(env, "The \"x\" argument must be a Float32Array");
  const Bytes xb = get_bytes(info[0], "x");
  a.x = reinterpret_cast<const float*>(xb.data);
  a.type = static_cast<uint32_t>(get_size(info[1], "type"));
  a.out = get_bytes(info[2], "out");
  a.n = get_size(info[3], "n");
  a.check_finite = !info[4].IsBoolean() || info[4].As<Napi::Boolean>().Value();
  const GgmlTypeInfo* t = ggml_type_info(a.type);
  if (t == nullptr || !ggml_can_quantize(a.type)) throw_status(env, Status(Code::kDtype, "unsupported ggml type"));
  if (a.n % t->block_size != 0) throw_status(env, Status(Code::kShape, "n is not a whole number of blocks"));
  if (a.n * 4 > xb.length) throw_range(env, "The \"x\" buffer holds fewer than n elements");
  if (a.n / t->block_size * t->type_size > a.out.length) throw_range(env, "The \"out\" buffer is too small for n elements");
  return a;
}

Status run_quantize(const QuantArgs& a, const std::atomic<bool>* cancel, bool ref) {
  if (ref) return ggml_quantize_ref(a.type, a.x, a.out.data, a.n);  // the reference takes no finiteness check
  return ggml_quantize(a.type, a.x, a.out.data, a.n, cancel, a.check_finite);
}

}  // namespace

// quantizeGgmlSync(x, type, out, n, checkFinite, backend?: 'ref' | 'auto')
Napi::Value QuantizeGgmlSync(const Napi::CallbackInfo& info) {
  QuantArgs a = read_quant_args(info);
  const bool ref = info[5].IsString() && info[5].As<Napi::String>().Utf8Value() == "ref";
  Status s = run_quantize(a, nullptr, ref);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// quantizeGgml(x, type, out, n, checkFinite, owners, token) -> Promise<void>
Napi::Value QuantizeGgml(const Napi::CallbackInfo& info) {
  QuantArgs a = read_quant_args(info);
  return StatusWorker::Start(
      info.Env(), [a](const std::atomic<bool>* cancel) { return run_quantize(a, cancel, false); }, {info[0], info[2]},
      pin_owners(info[5]), get_abort_flag(info[6]));
}

namespace {

struct Fp8Args {
  Fp8QuantSpec spec;
  Bytes x, out, scales;
};

// (x, weightDtype, out Uint8Array, scales Float32Array, rows, cols, blockRows, blockCols, fp8Dtype, owners,
//  token, checkFinite); blockRows/blockCols 0 = the whole dimension.
Fp8Args read_fp8_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Fp8Args a;
  a.x = get_bytes(info[0], "x");
  a.spec.weight_dtype = get_dtype(info[1], "weightDtype");
  a.out = get_bytes(info[2], "out");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(env, "The \"scales\" argument must be a Float32Array");
  a.scales = get_bytes(info[3], "scales");
  a.spec.rows = get_size(info[4], "rows");
  a.spec.cols = get_size(info[5], "cols");
  a.spec.block_rows = get_size(info[6], "blockRows");
  a.spec.block_cols = get_size(info[7], "blockCols");
  a.spec.fp8 = get_dtype(info[8], "fp8Dtype");
  a.spec.check_finite = !info[11].IsBoolean() || info[11].As<Napi::Boolean>().Value();
  const size_t n = a.spec.rows * a.spec.cols;
  const size_t esize = dtype_size(a.spec.weight_dtype);
  const size_t br = a.spec.block_rows ? a.spec.block_rows : a.spec.rows;
  const size_t bc = a.spec.block_cols ? a.spec.block_cols : a.spec.cols;
  const size_t groups = br && bc ? ((a.spec.rows + br - 1) / br) * ((a.spec.cols + bc - 1) / bc) : 0;
  if (esize == 0 || a.x.length < n * esize) throw_range(env, "The \"x\" buffer is smaller than rows x cols");
  if (a.out.length < n) throw_range(env, "The \"out\" buffer is smaller than rows x cols");
  if (a.scales.length < groups * 4) throw_range(env, "The \"scales\" buffer is smaller than the number of groups");
  return a;
}

}  // namespace

// quantizeFp8Sync(...same arguments...)
Napi::Value QuantizeFp8Sync(const Napi::CallbackInfo& info) {
  Fp8Args a = read_fp8_args(info);
  Status s = fp8_quantize(a.spec, a.x.data, a.out.data, reinterpret_cast<float*>(a.scales.data));
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// quantizeFp8(...) -> Promise<void>
Napi::Value QuantizeFp8(const Napi::CallbackInfo& info) {
  Fp8Args a = read_fp8_args(info);
  return StatusWorker::Start(
      info.Env(),
      [a](const std::atomic<bool>* cancel) {
        return fp8_quantize(a.spec, a.x.data, a.out.data, reinterpret_cast<float*>(a.scales.data), cancel);
      },
      {info[0], info[2], info[3]}, pin_owners(info[9]), get_abort_flag(info[10]));
}

namespace {

struct IntArgs {
  IntQuantSpec spec;
  Bytes x, codes, scales, zps;
};

// (x, weightDtype, codes Int8Array, scales Float32Array, zeroPoints Int32Array, rows, cols, bits, symmetric,
//  group (0: whole row), wholeTensor, checkFinite, owners, token)
IntArgs read_int_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IntArgs a;
  a.x = get_bytes(info[0], "x");
  a.spec.weight_dtype = get_dtype(info[1], "weightDtype");
  a.codes = get_bytes(info[2], "codes");
  a.scales = get_bytes(info[3], "scales");
  a.zps = get_bytes(info[4], "zeroPoints");
  a.spec.rows = get_size(info[5], "rows");
  a.spec.cols = get_size(info[6], "cols");
  const size_t bits = get_size(info[7], "bits");
  if (bits < 1 || bits > 8) throw_range(env, "The \"bits\" argument must be an integer from 1 to 8");
  a.spec.bits = static_cast<int>(bits);
  a.spec.symmetric = info[8].ToBoolean().Value();
  a.spec.group = get_size(info[9], "group");
  a.spec.whole_tensor = info[10].ToBoolean().Value();
  a.spec.check_finite = info[11].ToBoolean().Value();
  const size_t n = a.spec.rows * a.spec.cols;
  const size_t esize = dtype_size(a.spec.weight_dtype);
  const size_t g = a.spec.whole_tensor || a.spec.group == 0 ? a.spec.cols : a.spec.group;
  const size_t groups = a.spec.whole_tensor ? 1 : a.spec.rows * (g ? (a.spec.cols + g - 1) / g : 0);
  if (esize == 0 || a.x.length < n * esize) throw_range(env, "The \"x\" buffer is smaller than rows x cols");
  if (a.codes.length < n) throw_range(env, "The \"codes\" buffer is smaller than rows x cols");
  if (a.scales.length < groups * 4 || a.zps.length < groups * 4) throw_range(env, "The scale or zero-point buffer is too small");
  return a;
}

Status run_int(const IntArgs& a, const std::atomic<bool>* cancel) {
  return int_quantize(a.spec, a.x.data, reinterpret_cast<int8_t*>(a.codes.data), reinterpret_cast<float*>(a.scales.data),
                      reinterpret_cast<int32_t*>(a.zps.data), cancel);
}

}  // namespace

Napi::Value QuantizeIntSync(const Napi::CallbackInfo& info) {
  IntArgs a = read_int_args(info);
  Status s = run_int(a, nullptr);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

Napi::Value QuantizeInt(const Napi::CallbackInfo& info) {
  IntArgs a = read_int_args(info);
  return StatusWorker::Start(
      info.Env(), [a](const std::atomic<bool>* cancel) { return run_int(a, cancel); }, {info[0], info[2], info[3], info[4]},
      pin_owners(info[12]), get_abort_flag(info[13]));
}

// packIntRows(codes Int8Array, rows, cols, bits, words Uint32Array) / unpackIntRows(words, rows, cols, bits, codes)
Napi::Value PackIntRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool unpack = info.Data() != nullptr;
  const Bytes a = get_bytes(info[0], unpack ? "words" : "codes");
  const size_t rows = get_size(info[1], "rows"), cols = get_size(info[2], "cols"), bits = get_size(info[3], "bits");
  if (bits < 1 || bits > 8) throw_range(env, "The \"bits\" argument must be an integer from 1 to 8");
  const Bytes b = get_bytes(info[4], unpack ? "codes" : "words");
  const size_t words = rows * ((cols * bits + 31) / 32);
  const Bytes& w = unpack ? a : b;
  const Bytes& c = unpack ? b : a;
  if (w.length < words * 4 || c.length < rows * cols) throw_range(env, "buffer too small for rows x cols");
  if (unpack) int_unpack_rows(reinterpret_cast<const uint32_t*>(w.data), rows, cols, static_cast<int>(bits), reinterpret_cast<int8_t*>(c.data));
  else int_pack_rows(reinterpret_cast<const int8_t*>(c.data), rows, cols, static_cast<int>(bits), reinterpret_cast<uint32_t*>(w.data));
  return env.Undefined();
}

// compareF32(a, b) -> { sse, maxAbs, aa, bb, ab, n }: f64 sums over two Float32Arrays of equal length.
Napi::Value CompareF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (int k = 0; k < 2; ++k) {
    if (!info[k].IsTypedArray() || info[k].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw_type(env, "compareF32 takes two Float32Arrays");
  }
  const Bytes a = get_bytes(info[0], "a");
  const Bytes b = get_bytes(info[1], "b");
  if (a.length != b.length) throw_range(env, "The arrays differ in length");
  CompareSums s;
  Status st = compare_f32(reinterpret_cast<const float*>(a.data), reinterpret_cast<const float*>(b.data), a.length / 4, &s);
  if (!st.is_ok()) throw_status(env, st);
  Napi::Object o = Napi::Object::New(env);
  o.Set("sse", s.sse);
  o.Set("maxAbs", s.max_abs);
  o.Set("aa", s.aa);
  o.Set("bb", s.bb);
  o.Set("ab", s.ab);
  o.Set("n", static_cast<double>(s.n));
  return o;
}

}  // namespace ws::binding
