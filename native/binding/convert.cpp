// SPDX-License-Identifier: MIT
// Bindings for dtype conversion, plus two internal helpers used by tests and benchmarks: the exhaustive
// comparison of the optimized f32 -> f16/bf16 paths with the reference, and a threaded memcpy baseline.
#include <cstring>

#include "common.h"
#include "file.h"
#include "weightsmith/convert.h"
#include "weightsmith/float-bits.h"
#include "weightsmith/thread-pool.h"

namespace ws::binding {

namespace {

struct ConvertArgs {
  Bytes src;
  Bytes dst;
  DType sdt;
  DType ddt;
  size_t n;
};

// (src, srcDtype, dst, dstDtype, n): validates that both buffers hold n elements.
ConvertArgs read_convert_args(const Napi::CallbackInfo& info) {
  ConvertArgs a;
  a.src = get_bytes(info[0], "src");
  a.sdt = get_dtype(info[1], "srcDtype");
  a.dst = get_bytes(info[2], "dst");
  a.ddt = get_dtype(info[3], "dstDtype");
  a.n = get_size(info[4], "n");
  const uint64_t sbytes = (static_cast<uint64_t>(a.n) * dtype_info(a.sdt).bits + 7) / 8;
  const uint64_t dbytes = (static_cast<uint64_t>(a.n) * dtype_info(a.ddt).bits + 7) / 8;
  if (sbytes > a.src.length) throw_range(info.Env(), "The \"src\" buffer holds fewer than n elements");
  if (dbytes > a.dst.length) throw_range(info.Env(), "The \"dst\" buffer holds fewer than n elements");
  if (a.n > 0 && a.src.data < a.dst.data + dbytes && a.dst.data < a.src.data + sbytes)
    throw_range(info.Env(), "The \"src\" and \"dst\" buffers overlap");
  return a;
}

}  // namespace

// convert(src, srcDtype, dst, dstDtype, n, backend?) on the calling thread's pool job.
Napi::Value ConvertSync(const Napi::CallbackInfo& info) {
  ConvertArgs a = read_convert_args(info);
  const Backend backend = info[5].IsString() && info[5].As<Napi::String>().Utf8Value() == "ref" ? Backend::kRef : Backend::kAuto;
  const bool single = info[6].IsBoolean() && info[6].As<Napi::Boolean>().Value();
  Status s = single ? convert(a.src.data, a.sdt, a.dst.data, a.ddt, a.n, backend)
                    : convert_parallel(a.src.data, a.sdt, a.dst.data, a.ddt, a.n, nullptr, backend);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// convertAsync(src, srcDtype, dst, dstDtype, n, owners, abortToken) -> Promise<void>
Napi::Value ConvertAsync(const Napi::CallbackInfo& info) {
  ConvertArgs a = read_convert_args(info);
  return StatusWorker::Start(
      info.Env(),
      [a](const std::atomic<bool>* cancel) { return convert_parallel(a.src.data, a.sdt, a.dst.data, a.ddt, a.n, cancel); },
      {info[0], info[2]}, pin_owners(info[5]), get_abort_flag(info[6]));
}

// Exhaustive check helper: compares the dispatched (optimized) conversion of f32 bit patterns [start, end)
// with the reference rule: float-bits.h's f32_to_f16 / f32_to_bf16 for 'f16' / 'bf16', the generic encoder
// mf_encode for 'f8_e4m3' / 'f8_e5m2'. An optional stride tests every stride-th pattern only.
// Returns [mismatches, firstMismatch or -1].
Napi::Value SelfTestF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const DType d = get_dtype(info[0], "target");
  const uint64_t start = static_cast<uint64_t>(get_size(info[1], "start"));
  const uint64_t end = static_cast<uint64_t>(get_size(info[2], "end"));
  if (end > (uint64_t{1} << 32) || start > end) throw_range(env, "range must lie within [0, 2^32]");
  const uint64_t stride = info[3].IsNumber() ? static_cast<uint64_t>(get_size(info[3], "stride")) : 1;
  if (stride == 0) throw_range(env, "stride must be positive");
  if (d != DType::kF16 && d != DType::kBF16 && d != DType::kF8E4M3 && d != DType::kF8E5M2)
    throw_range(env, "target must be f16, bf16, f8_e4m3 or f8_e5m2");
  const size_t out_size = dtype_size(d);
  constexpr size_t kChunk = 1 << 20;
  const uint64_t count = (end - start + stride - 1) / stride;
  const size_t n_chunks = chunk_count(static_cast<size_t>(count), kChunk);
  std::vector<uint64_t> bad(n_chunks, 0);
  std::vector<int64_t> first(n_chunks, -1);
  Status s = parallel_for(n_chunks, [&](size_t c) {
    const uint64_t lo = uint64_t{c} * kChunk;
    const size_t len = static_cast<size_t>(count - lo < kChunk ? count - lo : kChunk);
    std::vector<uint32_t> in(len);
    std::vector<uint8_t> out(len * out_size);
    for (size_t i = 0; i < len; ++i) in[i] = static_cast<uint32_t>(start + (lo + i) * stride);
    Status st = convert(in.data(), DType::kF32, out.data(), d, len, Backend::kAuto);
    if (!st.is_ok()) return st;
    for (size_t i = 0; i < len; ++i) {
      uint32_t got, want;
      if (out_size == 2) {
        uint16_t h;
        std::memcpy(&h, out.data() + 2 * i, 2);
        got = h;
        want = d == DType::kBF16 ? f32_to_bf16(in[i]) : f32_to_f16(in[i]);
      } else {
        got = out[i];
        want = mf_encode(mf_decode(in[i], kFmtF32), d == DType::kF8E4M3 ? kFmtE4M3 : kFmtE5M2);
      }
      if (got != want && bad[c]++ == 0) first[c] = static_cast<int64_t>(in[i]);
    }
    return Status::ok();
  });
  if (!s.is_ok()) throw_status(env, s);
  uint64_t total = 0;
  int64_t first_bad = -1;
  for (size_t c = 0; c < n_chunks; ++c) {
    total += bad[c];
    if (first_bad < 0 && first[c] >= 0) first_bad = first[c];
  }
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, Napi::Number::New(env, static_cast<double>(total)));
  r.Set(1u, Napi::Number::New(env, static_cast<double>(first_bad)));
  return r;
}

// Sampled check that the fast bit rules for f32 -> f16/bf16 equal the generic round-to-nearest-even encoder
// (the definition of every float conversion): every `stride`-th f32 bit pattern. Returns mismatches.
Napi::Value SelfTestGeneric(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t stride = static_cast<uint64_t>(get_size(info[0], "stride"));
  if (stride == 0) throw_range(env, "stride must be positive");
  const uint64_t count = ((uint64_t{1} << 32) + stride - 1) / stride;
  constexpr size_t kChunk = 1 << 16;
  const size_t n_chunks = chunk_count(static_cast<size_t>(count), kChunk);
  std::vector<uint64_t> bad(n_chunks, 0);
  Status s = parallel_for(n_chunks, [&](size_t c) {
    const uint64_t lo = uint64_t{c} * kChunk;
    const uint64_t hi = lo + kChunk < count ? lo + kChunk : count;
    for (uint64_t k = lo; k < hi; ++k) {
      const uint32_t x = static_cast<uint32_t>(k * stride);
      const double v = mf_decode(x, kFmtF32);
      if (f32_to_f16(x) != mf_encode(v, kFmtF16)) ++bad[c];
      if (f32_to_bf16(x) != mf_encode(v, kFmtBF16)) ++bad[c];
      if (f16_to_f32(static_cast<uint16_t>(x)) != mf_encode(mf_decode(x & 0xffff, kFmtF16), kFmtF32)) ++bad[c];
      if (bf16_to_f32(static_cast<uint16_t>(x)) != mf_encode(mf_decode(x & 0xffff, kFmtBF16), kFmtF32)) ++bad[c];
    }
    return Status::ok();
  });
  if (!s.is_ok()) throw_status(env, s);
  uint64_t total = 0;
  for (uint64_t b : bad) total += b;
  return Napi::Number::New(env, static_cast<double>(total));
}

// memcpyBench(dst, src, threads?): the bandwidth baseline of the benchmarks, cut into 1 MiB chunks on the pool.
Napi::Value MemcpyParallel(const Napi::CallbackInfo& info) {
  Bytes dst = get_bytes(info[0], "dst");
  Bytes src = get_bytes(info[1], "src");
  const size_t n = dst.length < src.length ? dst.length : src.length;
  constexpr size_t kChunk = size_t{1} << 20;
  Status s = parallel_for(chunk_count(n, kChunk), [&](size_t c) {
    const size_t off = c * kChunk;
    std::memcpy(dst.data + off, src.data + off, n - off < kChunk ? n - off : kChunk);
    return Status::ok();
  });
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

}  // namespace ws::binding
