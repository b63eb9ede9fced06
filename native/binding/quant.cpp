// SPDX-License-Identifier: MIT
// Bindings for ggml block quantization and dequantization.
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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

// An output buffer the kernel is about to fill entirely: on Linux, ask for transparent huge pages over its
// 2 MiB-aligned interior (a hint: with THP in "madvise" mode a fresh buffer then takes one page fault per
// 2 MiB instead of per 4 KiB; nothing changes for memory already mapped or where THP is off).
void advise_huge_pages(const Bytes& b) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  if (b.length < 2 * kHuge) return;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(b.data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(b.data) + b.length) & ~(kHuge - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)b;
#endif
}

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

// (x, weightDtype, out Uint8Array, scales (weight-dtype bytes), rows, cols, blockRows, blockCols, fp8Dtype, owners,
//  token, checkFinite); blockRows/blockCols 0 = the whole dimension.
Fp8Args read_fp8_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Fp8Args a;
  a.x = get_bytes(info[0], "x");
  a.spec.weight_dtype = get_dtype(info[1], "weightDtype");
  a.out = get_bytes(info[2], "out");
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
  if (a.scales.length < groups * esize) throw_range(env, "The \"scales\" buffer is smaller than the number of groups");
  advise_huge_pages(a.out);
  return a;
}

bool ref_backend(const Napi::Value& v) { return v.IsString() && v.As<Napi::String>().Utf8Value() == "ref"; }

}  // namespace

// quantizeFp8Sync(...same arguments..., backend?: 'ref' | 'auto')
Napi::Value QuantizeFp8Sync(const Napi::CallbackInfo& info) {
  Fp8Args a = read_fp8_args(info);
  Status s = ref_backend(info[12]) ? fp8_quantize_ref(a.spec, a.x.data, a.out.data, a.scales.data)
                                   : fp8_quantize(a.spec, a.x.data, a.out.data, a.scales.data);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// quantizeFp8(...) -> Promise<void>
Napi::Value QuantizeFp8(const Napi::CallbackInfo& info) {
  Fp8Args a = read_fp8_args(info);
  return StatusWorker::Start(
      info.Env(),
      [a](const std::atomic<bool>* cancel) {
        return fp8_quantize(a.spec, a.x.data, a.out.data, a.scales.data, cancel);
      },
      {info[0], info[2], info[3]}, pin_owners(info[9]), get_abort_flag(info[10]));
}

namespace {

struct IntArgs {
  IntQuantSpec spec;
  Bytes x, packed, scales, zps;
};

// (x, weightDtype, packed Int32Array, scales (weight-dtype bytes), zeroPoints Int32Array | null, rows, cols,
//  bits, symmetric, group (0: whole row), wholeTensor, checkFinite, ...)
IntArgs read_int_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IntArgs a;
  a.x = get_bytes(info[0], "x");
  a.spec.weight_dtype = get_dtype(info[1], "weightDtype");
  a.packed = get_bytes(info[2], "packed");
  a.scales = get_bytes(info[3], "scales");
  if (!info[4].IsNull() && !info[4].IsUndefined()) a.zps = get_bytes(info[4], "zeroPoints");
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
  const size_t groups = int_group_count(a.spec);
  if (esize == 0 || a.x.length < n * esize) throw_range(env, "The \"x\" buffer is smaller than rows x cols");
  if (a.packed.length < a.spec.rows * int_words_per_row(a.spec.cols, a.spec.bits) * 4)
    throw_range(env, "The \"packed\" buffer is smaller than rows x words per row");
  if (a.scales.length < groups * esize) throw_range(env, "The scale buffer is too small");
  if (!a.spec.symmetric) {
    const size_t zwords = a.spec.whole_tensor ? 1 : int_words_per_row(a.spec.rows, a.spec.bits) * int_groups_per_row(a.spec);
    if (a.zps.data == nullptr || a.zps.length < zwords * 4) throw_range(env, "The zero-point buffer is too small");
  }
  advise_huge_pages(a.packed);
  return a;
}

Status run_int(const IntArgs& a, const std::atomic<bool>* cancel, bool ref) {
  IntQuantOut out;
  out.packed = reinterpret_cast<uint32_t*>(a.packed.data);
  out.scales = a.scales.data;
  out.zero_points = reinterpret_cast<uint32_t*>(a.zps.data);
  return ref ? int_quantize_ref(a.spec, a.x.data, out) : int_quantize(a.spec, a.x.data, out, cancel);
}

}  // namespace

// quantizeIntSync(...the arguments above..., backend?: 'ref' | 'auto')
Napi::Value QuantizeIntSync(const Napi::CallbackInfo& info) {
  IntArgs a = read_int_args(info);
  Status s = run_int(a, nullptr, ref_backend(info[12]));
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// quantizeInt(...the arguments above..., owners, token) -> Promise<void>
Napi::Value QuantizeInt(const Napi::CallbackInfo& info) {
  IntArgs a = read_int_args(info);
  std::vector<Napi::Value> keep{info[0], info[2], info[3]};
  if (a.zps.data != nullptr) keep.push_back(info[4]);
  return StatusWorker::Start(
      info.Env(), [a](const std::atomic<bool>* cancel) { return run_int(a, cancel, false); }, keep, pin_owners(info[12]),
      get_abort_flag(info[13]));
}

// dequantizeIntSync(packed, scales (weight-dtype bytes), zeroPoints Int32Array | null, rows, cols, bits,
//   symmetric, group, wholeTensor, weightDtype, out, outDtype ('f32' or the weight dtype))
Napi::Value DequantizeIntSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IntQuantSpec spec;
  const Bytes packed = get_bytes(info[0], "packed");
  const Bytes scales = get_bytes(info[1], "scales");
  Bytes zps;
  if (!info[2].IsNull() && !info[2].IsUndefined()) zps = get_bytes(info[2], "zeroPoints");
  spec.rows = get_size(info[3], "rows");
  spec.cols = get_size(info[4], "cols");
  const size_t bits = get_size(info[5], "bits");
  if (bits < 1 || bits > 8) throw_range(env, "The \"bits\" argument must be an integer from 1 to 8");
  spec.bits = static_cast<int>(bits);
  spec.symmetric = info[6].ToBoolean().Value();
  spec.group = get_size(info[7], "group");
  spec.whole_tensor = info[8].ToBoolean().Value();
  spec.weight_dtype = get_dtype(info[9], "weightDtype");
  const Bytes out = get_bytes(info[10], "out");
  const DType od = get_dtype(info[11], "outDtype");
  const size_t esize = dtype_size(spec.weight_dtype);
  if (esize == 0) throw_status(env, Status(Code::kDtype, "int scales are f32, f16 or bf16"));
  if (packed.length < spec.rows * int_words_per_row(spec.cols, spec.bits) * 4) throw_range(env, "The \"packed\" buffer is too small");
  if (scales.length < int_group_count(spec) * esize) throw_range(env, "The scale buffer is too small");
  if (!spec.symmetric && zps.data != nullptr) {
    const size_t zwords = spec.whole_tensor ? 1 : int_words_per_row(spec.rows, spec.bits) * int_groups_per_row(spec);
    if (zps.length < zwords * 4) throw_range(env, "The zero-point buffer is too small");
  }
  if (out.length < spec.rows * spec.cols * dtype_size(od)) throw_range(env, "The \"out\" buffer is too small");
  advise_huge_pages(out);
  Status s = int_dequantize(spec, reinterpret_cast<const uint32_t*>(packed.data), scales.data,
                            reinterpret_cast<const uint32_t*>(zps.data), out.data, od);
  if (!s.is_ok()) throw_status(env, s);
  return env.Undefined();
}

// dequantizeFp8Sync(codes Uint8Array, scales (weight-dtype bytes), weightDtype, fp8Dtype, rows, cols, blockRows,
//   blockCols, out Float32Array)
Napi::Value DequantizeFp8Sync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Fp8QuantSpec spec;
  const Bytes codes = get_bytes(info[0], "codes");
  const Bytes scales = get_bytes(info[1], "scales");
  spec.weight_dtype = get_dtype(info[2], "weightDtype");
  spec.fp8 = get_dtype(info[3], "fp8Dtype");
  spec.rows = get_size(info[4], "rows");
  spec.cols = get_size(info[5], "cols");
  spec.block_rows = get_size(info[6], "blockRows");
  spec.block_cols = get_size(info[7], "blockCols");
  if (!info[8].IsTypedArray() || info[8].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(env, "The \"out\" argument must be a Float32Array");
  const Bytes out = get_bytes(info[8], "out");
  const size_t n = spec.rows * spec.cols;
  const size_t br = spec.block_rows ? spec.block_rows : spec.rows;
  const size_t bc = spec.block_cols ? spec.block_cols : spec.cols;
  const size_t groups = br && bc ? ((spec.rows + br - 1) / br) * ((spec.cols + bc - 1) / bc) : 0;
  const size_t esize = dtype_size(spec.weight_dtype);
  if (esize == 0) throw_status(env, Status(Code::kDtype, "fp8 scales are f32, f16 or bf16"));
  if (codes.length < n || out.length < n * 4) throw_range(env, "a buffer is smaller than rows x cols");
  if (scales.length < groups * esize) throw_range(env, "The \"scales\" buffer is smaller than the number of groups");
  advise_huge_pages(out);
  Status s = fp8_dequantize(spec, codes.data, scales.data, reinterpret_cast<float*>(out.data));
  if (!s.is_ok()) throw_status(env, s);
  return env.Undefined();
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
