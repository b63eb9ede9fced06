// SPDX-License-Identifier: MIT
// The conversion entry points: identity copies, table dispatch, and chunked parallel execution.
#include "weightsmith/convert.h"

#include <cstring>
#include <string>

#include "convert-kernels.h"
#include "weightsmith/cpu.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

// One table per SIMD tier; a tier's table holds only kernels the CPU supports (simd_level() never exceeds
// simd_supported()).
struct Tables {
  ConvertTable ref;
  ConvertTable tier[3];
  Tables() {
    convert_register_ref(&ref);
    for (auto& t : tier) {
      convert_register_ref(&t);
      convert_register_cpu(&t);
    }
#if defined(__x86_64__)
    const SimdLevel sup = simd_supported();
    if (sup >= SimdLevel::kAvx2) {
      convert_register_avx2(&tier[1]);
      convert_register_avx2(&tier[2]);
    }
    if (sup >= SimdLevel::kAvx512) convert_register_avx512(&tier[2]);
#endif
  }
};

const Tables& tables() {
  static const Tables* t = new Tables();
  return *t;
}

Status lookup(DType s, DType d, Backend backend, ConvertFn* out) {
  const ConvertTable& t = backend == Backend::kRef ? tables().ref : tables().tier[static_cast<int>(simd_level())];
  *out = t.fn[static_cast<size_t>(s)][static_cast<size_t>(d)];
  if (*out == nullptr) {
    return Status(Code::kDtype, std::string("no conversion from ") + dtype_info(s).name + " to " + dtype_info(d).name +
                                    " (pass-through dtypes convert only to themselves)");
  }
  return Status::ok();
}

}  // namespace

Status convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, size_t n, Backend backend) {
  if (src_dtype == dst_dtype) {
    const uint64_t bytes = (static_cast<uint64_t>(n) * dtype_info(src_dtype).bits + 7) / 8;
    if (bytes) std::memcpy(dst, src, static_cast<size_t>(bytes));
    return Status::ok();
  }
  ConvertFn fn;
  WS_RETURN_IF_ERROR(lookup(src_dtype, dst_dtype, backend, &fn));
  if (n) fn(src, dst, n);
  return Status::ok();
}

Status convert_parallel(const void* src, DType src_dtype, void* dst, DType dst_dtype, size_t n,
                        const std::atomic<bool>* cancel, Backend backend) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  if (src_dtype == dst_dtype) {
    const uint64_t bytes = (static_cast<uint64_t>(n) * dtype_info(src_dtype).bits + 7) / 8;
    constexpr size_t kBytesPerChunk = size_t{1} << 20;
    return parallel_for(
        chunk_count(static_cast<size_t>(bytes), kBytesPerChunk),
        [&](size_t c) {
          const size_t off = c * kBytesPerChunk;
          const size_t len = bytes - off < kBytesPerChunk ? static_cast<size_t>(bytes - off) : kBytesPerChunk;
          std::memcpy(d + off, s + off, len);
          return Status::ok();
        },
        cancel);
  }
  ConvertFn fn;
  WS_RETURN_IF_ERROR(lookup(src_dtype, dst_dtype, backend, &fn));
  const size_t ss = dtype_size(src_dtype);
  const size_t ds = dtype_size(dst_dtype);
  return parallel_for(
      chunk_count(n, kConvertChunk),
      [&](size_t c) {
        const size_t off = c * kConvertChunk;
        const size_t len = n - off < kConvertChunk ? n - off : kConvertChunk;
        fn(s + off * ss, d + off * ds, len);
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
