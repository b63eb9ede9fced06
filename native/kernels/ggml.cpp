// SPDX-License-Identifier: MIT
// ggml block quantization entry points: type checks, SIMD dispatch, fixed-chunk parallel execution.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ggml-kernels.h"
#include "weightsmith/cpu.h"
#include "weightsmith/ggml-quants.h"
#include "weightsmith/ggml-types.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

constexpr size_t kBlocksPerChunk = 2048;

Status check(uint32_t type, size_t n, bool quant, const GgmlTypeInfo** info) {
  *info = ggml_type_info(type);
  const bool ok = quant ? ggml_quant_ref_fn(type) != nullptr : ggml_dequant_ref_fn(type) != nullptr;
  if (*info == nullptr || !ok)
    return Status(Code::kDtype, std::string(quant ? "quantization to" : "dequantization of") + " ggml type " +
                                    (*info ? (*info)->name : std::to_string(type)) + " is not supported");
  if (n % (*info)->block_size != 0)
    return Status(Code::kShape, std::to_string(n) + " values are not a whole number of " + (*info)->name + " blocks of " +
                                    std::to_string((*info)->block_size));
  return Status::ok();
}

GgmlQuantFn best_quant(uint32_t type) {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512) {
    if (GgmlQuantFn fn = ggml_quant_avx512_fn(type)) return fn;
    if (GgmlQuantFn fn = ggml_kquant_avx512_fn(type)) return fn;
  }
  if (simd_level() >= SimdLevel::kAvx2) {
    if (GgmlQuantFn fn = ggml_quant_avx2_fn(type)) return fn;
    if (GgmlQuantFn fn = ggml_kquant_avx2_fn(type)) return fn;
  }
#endif
  return ggml_quant_ref_fn(type);
}

}  // namespace

bool ggml_can_quantize(uint32_t type) { return ggml_quant_ref_fn(type) != nullptr; }
bool ggml_can_dequantize(uint32_t type) { return ggml_dequant_ref_fn(type) != nullptr; }

Status ggml_quantize_ref(uint32_t type, const float* x, uint8_t* blocks, size_t n) {
  const GgmlTypeInfo* info;
  WS_RETURN_IF_ERROR(check(type, n, true, &info));
  ggml_quant_ref_fn(type)(x, blocks, n / info->block_size);
  return Status::ok();
}

// The index of the first non-finite value of x[0, n), or SIZE_MAX: a branch-free pass over the exponent bits
// (it vectorizes), then a search only on a hit.
static size_t first_non_finite(const float* x, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  if (!bad) return SIZE_MAX;
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return SIZE_MAX;
}

Status ggml_quantize(uint32_t type, const float* x, uint8_t* blocks, size_t n, const std::atomic<bool>* cancel,
                     bool check_finite) {
  const GgmlTypeInfo* info;
  WS_RETURN_IF_ERROR(check(type, n, true, &info));
  const GgmlQuantFn fn = best_quant(type);
  GgmlQuantCheckedFn checked = nullptr;
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512) checked = ggml_quant_avx512_checked_fn(type);
#endif
  const size_t nb = n / info->block_size;
  const size_t chunks = chunk_count(nb, kBlocksPerChunk);
  std::vector<size_t> bad(check_finite ? chunks : 0, SIZE_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t c) {
        const size_t lo = c * kBlocksPerChunk;
        const size_t len = nb - lo < kBlocksPerChunk ? nb - lo : kBlocksPerChunk;
        const float* xs = x + lo * info->block_size;
        if (check_finite && checked != nullptr) {
          const size_t f = checked(xs, blocks + lo * info->type_size, len);
          if (f != SIZE_MAX) bad[c] = lo * info->block_size + f;
          return Status::ok();
        }
        if (check_finite) {
          const size_t f = first_non_finite(xs, len * info->block_size);
          if (f != SIZE_MAX) {
            bad[c] = lo * info->block_size + f;
            return Status::ok();
          }
        }
        fn(xs, blocks + lo * info->type_size, len);
        return Status::ok();
      },
      cancel));
  for (size_t i : bad) {
    if (i != SIZE_MAX) {
      Status s(Code::kNonFinite, "non-finite value at index " + std::to_string(i) + " (pass nonFinite: 'zero' or 'propagate' to allow)");
      s.with("index", static_cast<uint64_t>(i));
      return s;
    }
  }
  return Status::ok();
}

Status ggml_dequantize_ref(uint32_t type, const uint8_t* blocks, float* out, size_t n) {
  const GgmlTypeInfo* info;
  WS_RETURN_IF_ERROR(check(type, n, false, &info));
  ggml_dequant_ref_fn(type)(blocks, out, n / info->block_size);
  return Status::ok();
}

Status ggml_dequantize(uint32_t type, const uint8_t* blocks, float* out, size_t n, const std::atomic<bool>* cancel) {
  const GgmlTypeInfo* info;
  WS_RETURN_IF_ERROR(check(type, n, false, &info));
  const GgmlDequantFn fn = ggml_dequant_ref_fn(type);
  const size_t nb = n / info->block_size;
  return parallel_for(
      chunk_count(nb, kBlocksPerChunk),
      [&](size_t c) {
        const size_t lo = c * kBlocksPerChunk;
        const size_t len = nb - lo < kBlocksPerChunk ? nb - lo : kBlocksPerChunk;
        fn(blocks + lo * info->type_size, out + lo * info->block_size, len);
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
