// SPDX-License-Identifier: MIT
// Module registration: the only place that lists what the addon exports.
#include <napi.h>

#include "common.h"
#include "file.h"
#include "weightsmith/cpu.h"
#include "weightsmith/dtype.h"
#include "weightsmith/thread-pool.h"

namespace ws::binding {

Napi::Value ConvertSync(const Napi::CallbackInfo& info);
Napi::Value ConvertAsync(const Napi::CallbackInfo& info);
Napi::Value SelfTestF32(const Napi::CallbackInfo& info);
Napi::Value SelfTestGeneric(const Napi::CallbackInfo& info);
Napi::Value MemcpyParallel(const Napi::CallbackInfo& info);
Napi::Value DequantizeGgmlSync(const Napi::CallbackInfo& info);
Napi::Value DequantizeIntSync(const Napi::CallbackInfo& info);
Napi::Value DequantizeFp8Sync(const Napi::CallbackInfo& info);
Napi::Value DequantizeGgml(const Napi::CallbackInfo& info);
Napi::Value QuantizeGgmlSync(const Napi::CallbackInfo& info);
Napi::Value QuantizeGgml(const Napi::CallbackInfo& info);
Napi::Value CompareF32(const Napi::CallbackInfo& info);
Napi::Value QuantizeFp8(const Napi::CallbackInfo& info);
Napi::Value QuantizeFp8Sync(const Napi::CallbackInfo& info);
Napi::Value QuantizeInt(const Napi::CallbackInfo& info);
Napi::Value QuantizeIntSync(const Napi::CallbackInfo& info);
Napi::Value PackIntRows(const Napi::CallbackInfo& info);
Napi::Value Bnb4QuantizeSync(const Napi::CallbackInfo& info);
Napi::Value Bnb4Quantize(const Napi::CallbackInfo& info);
Napi::Value Bnb4DequantizeSync(const Napi::CallbackInfo& info);
Napi::Value Bnb4Dequantize(const Napi::CallbackInfo& info);
Napi::Value Bnb4Table(const Napi::CallbackInfo& info);
Napi::Value BnbDynamicMap(const Napi::CallbackInfo& info);
Napi::Value Blockwise8(const Napi::CallbackInfo& info);
Napi::Value Bnb4DoubleQuantize(const Napi::CallbackInfo& info);
Napi::Value SparsityMaskSync(const Napi::CallbackInfo& info);
Napi::Value SparsityMask(const Napi::CallbackInfo& info);
Napi::Value SparsityApplySync(const Napi::CallbackInfo& info);
Napi::Value SparsityApply(const Napi::CallbackInfo& info);
Napi::Value MaskRowCounts(const Napi::CallbackInfo& info);
Napi::Value SparseCountRows(const Napi::CallbackInfo& info);
Napi::Value MatmulSync(const Napi::CallbackInfo& info);
Napi::Value Matmul(const Napi::CallbackInfo& info);
Napi::Value QrSync(const Napi::CallbackInfo& info);
Napi::Value Qr(const Napi::CallbackInfo& info);
Napi::Value SvdSync(const Napi::CallbackInfo& info);
Napi::Value Svd(const Napi::CallbackInfo& info);
Napi::Value DMatmulSync(const Napi::CallbackInfo& info);
Napi::Value DMatmul(const Napi::CallbackInfo& info);
Napi::Value SyrkSync(const Napi::CallbackInfo& info);
Napi::Value Syrk(const Napi::CallbackInfo& info);
Napi::Value CholeskySync(const Napi::CallbackInfo& info);
Napi::Value Cholesky(const Napi::CallbackInfo& info);
Napi::Value CholeskyInverseSync(const Napi::CallbackInfo& info);
Napi::Value CholeskyInverse(const Napi::CallbackInfo& info);
Napi::Value TriangularSolveSync(const Napi::CallbackInfo& info);
Napi::Value TriangularSolve(const Napi::CallbackInfo& info);
Napi::Value SvdSetMaxSweeps(const Napi::CallbackInfo& info);
Napi::Value SvdSetScaleGuard(const Napi::CallbackInfo& info);
Napi::Value SparseCompress(const Napi::CallbackInfo& info);
Napi::Value SparseDecompress(const Napi::CallbackInfo& info);
Napi::Value CalibAddSync(const Napi::CallbackInfo& info);
Napi::Value GaussianFillSync(const Napi::CallbackInfo& info);
Napi::Value CalibAdd(const Napi::CallbackInfo& info);
Napi::Value CalibGramSync(const Napi::CallbackInfo& info);

namespace {

// init({ makeError }): hands the JS error factory to native code once per environment.
Napi::Value InitErrors(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw_type(info.Env(), "The \"makeError\" argument must be a function");
  addon_data(info.Env()).make_error = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), get_threads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const size_t n = get_size(info[0], "n");
  if (n < 1 || n > 256) throw_range(info.Env(), "The \"n\" argument must be an integer in [1, 256]");
  set_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("f16c", f.f16c);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw);
  o.Set("simd", simd_level_name(simd_level()));
  o.Set("simdSupported", simd_level_name(simd_supported()));
  return o;
}

// setSimd('baseline' | 'avx2' | 'avx512'): caps the SIMD tier (for tests and benchmarks).
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  const std::string level = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (level == "baseline") set_simd_level(SimdLevel::kBaseline);
  else if (level == "avx2") set_simd_level(SimdLevel::kAvx2);
  else if (level == "avx512") set_simd_level(SimdLevel::kAvx512);
  else throw_range(info.Env(), "The \"level\" argument must be 'baseline', 'avx2' or 'avx512'");
  return info.Env().Undefined();
}

// The native dtype table, for the test that compares it with lib/dtype.ts.
Napi::Value DTypeTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env, kDTypeCount);
  for (size_t i = 0; i < kDTypeCount; ++i) {
    const DTypeInfo& d = kDTypeTable[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", d.name);
    o.Set("stName", d.st_name);
    o.Set("bits", static_cast<double>(d.bits));
    o.Set("stRank", static_cast<double>(d.st_rank));
    o.Set("arith", dtype_is_arith(d.dtype));
    arr.Set(static_cast<uint32_t>(i), o);
  }
  return arr;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function file_ctor = NativeFile::Init(env);
  data->native_file_ctor = Napi::Persistent(file_ctor);
  Napi::Function token_ctor = AbortToken::Init(env);

  exports.Set("init", Napi::Function::New<InitErrors>(env, "init"));
  exports.Set("NativeFile", file_ctor);
  exports.Set("AbortToken", token_ctor);
  exports.Set("openFileSync", Napi::Function::New<OpenFileSync>(env, "openFileSync"));
  exports.Set("openFile", Napi::Function::New<OpenFileAsync>(env, "openFile"));
  exports.Set("detach", Napi::Function::New<DetachBuffer>(env, "detach"));
  exports.Set("convertSync", Napi::Function::New<ConvertSync>(env, "convertSync"));
  exports.Set("convert", Napi::Function::New<ConvertAsync>(env, "convert"));
  exports.Set("getThreads", Napi::Function::New<GetThreads>(env, "getThreads"));
  exports.Set("setThreads", Napi::Function::New<SetThreads>(env, "setThreads"));
  exports.Set("cpuInfo", Napi::Function::New<CpuInfo>(env, "cpuInfo"));
  exports.Set("setSimd", Napi::Function::New<SetSimd>(env, "setSimd"));
  exports.Set("dtypeTable", Napi::Function::New<DTypeTable>(env, "dtypeTable"));
  exports.Set("selfTestF32", Napi::Function::New<SelfTestF32>(env, "selfTestF32"));
  exports.Set("selfTestGeneric", Napi::Function::New<SelfTestGeneric>(env, "selfTestGeneric"));
  exports.Set("memcpyParallel", Napi::Function::New<MemcpyParallel>(env, "memcpyParallel"));
  exports.Set("dequantizeGgmlSync", Napi::Function::New<DequantizeGgmlSync>(env, "dequantizeGgmlSync"));
  exports.Set("dequantizeGgml", Napi::Function::New<DequantizeGgml>(env, "dequantizeGgml"));
  exports.Set("quantizeGgmlSync", Napi::Function::New<QuantizeGgmlSync>(env, "quantizeGgmlSync"));
  exports.Set("quantizeGgml", Napi::Function::New<QuantizeGgml>(env, "quantizeGgml"));
  exports.Set("compareF32", Napi::Function::New<CompareF32>(env, "compareF32"));
  exports.Set("quantizeFp8", Napi::Function::New<QuantizeFp8>(env, "quantizeFp8"));
  exports.Set("quantizeFp8Sync", Napi::Function::New<QuantizeFp8Sync>(env, "quantizeFp8Sync"));
  exports.Set("quantizeInt", Napi::Function::New<QuantizeInt>(env, "quantizeInt"));
  exports.Set("quantizeIntSync", Napi::Function::New<QuantizeIntSync>(env, "quantizeIntSync"));
  exports.Set("dequantizeIntSync", Napi::Function::New<DequantizeIntSync>(env, "dequantizeIntSync"));
  exports.Set("dequantizeFp8Sync", Napi::Function::New<DequantizeFp8Sync>(env, "dequantizeFp8Sync"));
  exports.Set("packIntRows", Napi::Function::New(env, PackIntRows, "packIntRows"));
  exports.Set("bnb4QuantizeSync", Napi::Function::New<Bnb4QuantizeSync>(env, "bnb4QuantizeSync"));
  exports.Set("bnb4Quantize", Napi::Function::New<Bnb4Quantize>(env, "bnb4Quantize"));
  exports.Set("bnb4DequantizeSync", Napi::Function::New<Bnb4DequantizeSync>(env, "bnb4DequantizeSync"));
  exports.Set("bnb4Dequantize", Napi::Function::New<Bnb4Dequantize>(env, "bnb4Dequantize"));
  exports.Set("bnb4Table", Napi::Function::New<Bnb4Table>(env, "bnb4Table"));
  exports.Set("bnbDynamicMap", Napi::Function::New<BnbDynamicMap>(env, "bnbDynamicMap"));
  exports.Set("sparsityMaskSync", Napi::Function::New<SparsityMaskSync>(env, "sparsityMaskSync"));
  exports.Set("sparsityMask", Napi::Function::New<SparsityMask>(env, "sparsityMask"));
  exports.Set("sparsityApplySync", Napi::Function::New<SparsityApplySync>(env, "sparsityApplySync"));
  exports.Set("sparsityApply", Napi::Function::New<SparsityApply>(env, "sparsityApply"));
  exports.Set("matmulSync", Napi::Function::New<MatmulSync>(env, "matmulSync"));
  exports.Set("matmul", Napi::Function::New<Matmul>(env, "matmul"));
  exports.Set("qrSync", Napi::Function::New<QrSync>(env, "qrSync"));
  exports.Set("qr", Napi::Function::New<Qr>(env, "qr"));
  exports.Set("svdSync", Napi::Function::New<SvdSync>(env, "svdSync"));
  exports.Set("svd", Napi::Function::New<Svd>(env, "svd"));
  exports.Set("dmatmulSync", Napi::Function::New<DMatmulSync>(env, "dmatmulSync"));
  exports.Set("dmatmul", Napi::Function::New<DMatmul>(env, "dmatmul"));
  exports.Set("syrkSync", Napi::Function::New<SyrkSync>(env, "syrkSync"));
  exports.Set("syrk", Napi::Function::New<Syrk>(env, "syrk"));
  exports.Set("choleskySync", Napi::Function::New<CholeskySync>(env, "choleskySync"));
  exports.Set("cholesky", Napi::Function::New<Cholesky>(env, "cholesky"));
  exports.Set("choleskyInverseSync", Napi::Function::New<CholeskyInverseSync>(env, "choleskyInverseSync"));
  exports.Set("choleskyInverse", Napi::Function::New<CholeskyInverse>(env, "choleskyInverse"));
  exports.Set("triangularSolveSync", Napi::Function::New<TriangularSolveSync>(env, "triangularSolveSync"));
  exports.Set("triangularSolve", Napi::Function::New<TriangularSolve>(env, "triangularSolve"));
  exports.Set("svdSetMaxSweeps", Napi::Function::New<SvdSetMaxSweeps>(env, "svdSetMaxSweeps"));
  exports.Set("svdSetScaleGuard", Napi::Function::New<SvdSetScaleGuard>(env, "svdSetScaleGuard"));
  exports.Set("sparseCountRows", Napi::Function::New<SparseCountRows>(env, "sparseCountRows"));
  exports.Set("sparseCompress", Napi::Function::New<SparseCompress>(env, "sparseCompress"));
  exports.Set("sparseDecompress", Napi::Function::New<SparseDecompress>(env, "sparseDecompress"));
  exports.Set("maskRowCounts", Napi::Function::New<MaskRowCounts>(env, "maskRowCounts"));
  exports.Set("calibAddSync", Napi::Function::New<CalibAddSync>(env, "calibAddSync"));
  exports.Set("gaussianFillSync", Napi::Function::New<GaussianFillSync>(env, "gaussianFillSync"));
  exports.Set("calibAdd", Napi::Function::New<CalibAdd>(env, "calibAdd"));
  exports.Set("calibGramSync", Napi::Function::New<CalibGramSync>(env, "calibGramSync"));
  exports.Set("bnb4DoubleQuantize", Napi::Function::New<Bnb4DoubleQuantize>(env, "bnb4DoubleQuantize"));
  exports.Set("blockwise8Quantize", Napi::Function::New(env, Blockwise8, "blockwise8Quantize"));
  exports.Set("blockwise8Dequantize", Napi::Function::New(env, Blockwise8, "blockwise8Dequantize", reinterpret_cast<void*>(1)));
  exports.Set("unpackIntRows", Napi::Function::New(env, PackIntRows, "unpackIntRows", reinterpret_cast<void*>(1)));
  return exports;
}

}  // namespace ws::binding

static Napi::Object InitWeightsmith(Napi::Env env, Napi::Object exports) { return ws::binding::Init(env, exports); }

NODE_API_MODULE(weightsmith, InitWeightsmith)
