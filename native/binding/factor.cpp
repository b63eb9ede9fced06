// SPDX-License-Identifier: MIT
// Bindings for the dense factorizations (factor.h): dmatmul (f64 GEMM), syrk, cholesky, choleskyInverse and
// triangularSolve. Matrices are Float32Arrays or Float64Arrays (all of one call the same type); each op has a Sync
// form (with an optional 'ref' backend, the scalar reference) and an async form (owners, abort token).
#include <string>
#include <vector>

#include "common.h"
#include "file.h"
#include "weightsmith/factor.h"

namespace ws::binding {

namespace {

// The element type of a call's matrices: f64 when the first is a Float64Array, f32 when a Float32Array; every
// other array index in `idx` must have the same type.
bool read_f64(const Napi::CallbackInfo& info, std::initializer_list<int> idx, const char* fn) {
  bool f64 = false;
  bool first = true;
  for (int i : idx) {
    const Napi::Value v = info[i];
    if (!v.IsTypedArray()) throw_type(info.Env(), std::string(fn) + " takes Float32Arrays or Float64Arrays");
    const napi_typedarray_type t = v.As<Napi::TypedArray>().TypedArrayType();
    if (t != napi_float32_array && t != napi_float64_array)
      throw_type(info.Env(), std::string(fn) + " takes Float32Arrays or Float64Arrays");
    if (first) f64 = t == napi_float64_array;
    else if (f64 != (t == napi_float64_array)) throw_type(info.Env(), std::string(fn) + ": the arrays differ in type");
    first = false;
  }
  return f64;
}

void need(const Napi::Env& env, const Bytes& b, size_t elems, bool f64) {
  if (b.length / (f64 ? 8 : 4) < elems) throw_range(env, "a buffer is smaller than its matrix");
}

bool is_ref(const Napi::Value& v) { return v.IsString() && v.As<Napi::String>().Utf8Value() == "ref"; }

template <typename T>
const T* cp(const Bytes& b) { return reinterpret_cast<const T*>(b.data); }
template <typename T>
T* mp(const Bytes& b) { return reinterpret_cast<T*>(b.data); }

using Work = std::function<Status(const std::atomic<bool>*, bool ref)>;

// Sync: runs work (reference when the backend argument is 'ref'); async: queues it with owners and token.
Napi::Value finish(const Napi::CallbackInfo& info, bool async, int tail, const Work& work,
                   const std::vector<Napi::Value>& keep) {
  if (!async) {
    Status s = work(nullptr, is_ref(info[tail]));
    if (!s.is_ok()) throw_status(info.Env(), s);
    return info.Env().Undefined();
  }
  return StatusWorker::Start(
      info.Env(), [work](const std::atomic<bool>* cancel) { return work(cancel, false); }, keep,
      pin_owners(info[tail]), get_abort_flag(info[tail + 1]));
}

// (a, b, m, n, k, transA, transB, out, backend | owners, token): Float64Arrays.
Napi::Value DMatmulImpl(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  if (!read_f64(info, {0, 1, 7}, "dmatmul")) throw_type(env, "dmatmul takes Float64Arrays");
  const Bytes a = get_bytes(info[0], "a"), b = get_bytes(info[1], "b"), c = get_bytes(info[7], "out");
  const size_t m = get_size(info[2], "m"), n = get_size(info[3], "n"), k = get_size(info[4], "k");
  const bool ta = info[5].ToBoolean().Value(), tb = info[6].ToBoolean().Value();
  need(env, a, m * k, true);
  need(env, b, k * n, true);
  need(env, c, m * n, true);
  return finish(info, async, 8, [=](const std::atomic<bool>* cancel, bool ref) {
    return ref ? dgemm_ref(ta, tb, m, n, k, cp<double>(a), cp<double>(b), mp<double>(c))
               : dgemm(ta, tb, m, n, k, cp<double>(a), cp<double>(b), mp<double>(c), cancel);
  }, {info[0], info[1], info[7]});
}

// (a, n, k, trans, out, backend | owners, token)
Napi::Value SyrkImpl(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const bool f64 = read_f64(info, {0, 4}, "syrk");
  const Bytes a = get_bytes(info[0], "a"), c = get_bytes(info[4], "out");
  const size_t n = get_size(info[1], "n"), k = get_size(info[2], "k");
  const bool trans = info[3].ToBoolean().Value();
  need(env, a, n * k, f64);
  need(env, c, n * n, f64);
  return finish(info, async, 5, [=](const std::atomic<bool>* cancel, bool ref) {
    if (f64) return ref ? syrk_ref(trans, n, k, cp<double>(a), mp<double>(c)) : syrk(trans, n, k, cp<double>(a), mp<double>(c), cancel);
    return ref ? syrk_ref(trans, n, k, cp<float>(a), mp<float>(c)) : syrk(trans, n, k, cp<float>(a), mp<float>(c), cancel);
  }, {info[0], info[4]});
}

// (a, n, upper, out, backend | owners, token); inverse: the same with the factor as a.
Napi::Value CholImpl(const Napi::CallbackInfo& info, bool async, bool inverse) {
  Napi::Env env = info.Env();
  const bool f64 = read_f64(info, {0, 3}, inverse ? "choleskyInverse" : "cholesky");
  const Bytes a = get_bytes(info[0], "a"), c = get_bytes(info[3], "out");
  const size_t n = get_size(info[1], "n");
  const bool upper = info[2].ToBoolean().Value();
  need(env, a, n * n, f64);
  need(env, c, n * n, f64);
  return finish(info, async, 4, [=](const std::atomic<bool>* cancel, bool ref) {
    if (f64) {
      const double* pa = cp<double>(a);
      double* pc = mp<double>(c);
      if (inverse) return ref ? cholesky_inverse_ref(n, pa, pc, upper) : cholesky_inverse(n, pa, pc, upper, cancel);
      return ref ? cholesky_ref(n, pa, pc, upper) : cholesky(n, pa, pc, upper, cancel);
    }
    const float* pa = cp<float>(a);
    float* pc = mp<float>(c);
    if (inverse) return ref ? cholesky_inverse_ref(n, pa, pc, upper) : cholesky_inverse(n, pa, pc, upper, cancel);
    return ref ? cholesky_ref(n, pa, pc, upper) : cholesky(n, pa, pc, upper, cancel);
  }, {info[0], info[3]});
}

// (a, b, m, n, left, upper, trans, unit, out, backend | owners, token)
Napi::Value TrsmImpl(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  const bool f64 = read_f64(info, {0, 1, 8}, "triangularSolve");
  const Bytes a = get_bytes(info[0], "a"), b = get_bytes(info[1], "b"), x = get_bytes(info[8], "out");
  const size_t m = get_size(info[2], "m"), n = get_size(info[3], "n");
  TrsmSpec sp;
  sp.left = info[4].ToBoolean().Value();
  sp.upper = info[5].ToBoolean().Value();
  sp.trans = info[6].ToBoolean().Value();
  sp.unit = info[7].ToBoolean().Value();
  const size_t order = sp.left ? m : n;
  need(env, a, order * order, f64);
  need(env, b, m * n, f64);
  need(env, x, m * n, f64);
  return finish(info, async, 9, [=](const std::atomic<bool>* cancel, bool ref) {
    if (f64) return ref ? trsm_ref(sp, m, n, cp<double>(a), cp<double>(b), mp<double>(x))
                        : trsm(sp, m, n, cp<double>(a), cp<double>(b), mp<double>(x), cancel);
    return ref ? trsm_ref(sp, m, n, cp<float>(a), cp<float>(b), mp<float>(x))
               : trsm(sp, m, n, cp<float>(a), cp<float>(b), mp<float>(x), cancel);
  }, {info[0], info[1], info[8]});
}

}  // namespace

Napi::Value DMatmulSync(const Napi::CallbackInfo& info) { return DMatmulImpl(info, false); }
Napi::Value DMatmul(const Napi::CallbackInfo& info) { return DMatmulImpl(info, true); }
Napi::Value SyrkSync(const Napi::CallbackInfo& info) { return SyrkImpl(info, false); }
Napi::Value Syrk(const Napi::CallbackInfo& info) { return SyrkImpl(info, true); }
Napi::Value CholeskySync(const Napi::CallbackInfo& info) { return CholImpl(info, false, false); }
Napi::Value Cholesky(const Napi::CallbackInfo& info) { return CholImpl(info, true, false); }
Napi::Value CholeskyInverseSync(const Napi::CallbackInfo& info) { return CholImpl(info, false, true); }
Napi::Value CholeskyInverse(const Napi::CallbackInfo& info) { return CholImpl(info, true, true); }
Napi::Value TriangularSolveSync(const Napi::CallbackInfo& info) { return TrsmImpl(info, false); }
Napi::Value TriangularSolve(const Napi::CallbackInfo& info) { return TrsmImpl(info, true); }

}  // namespace ws::binding
