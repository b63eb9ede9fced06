// SPDX-License-Identifier: MIT
// ggml block quantization entry points: type checks, SIMD dispatch, fixed-chunk parallel execution.
#include <string>

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
  if (simd_level() >= SimdLevel::kAvx2) {
    if (GgmlQuantFn fn = ggml_quant_avx2_fn(type)) return fn;
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

Status ggml_quantize(uint32_t type, const float* x, uint8_t* blocks, size_t n, const std::atomic<bool>* cancel) {
  const GgmlTypeInfo* info;
  WS_RETURN_IF_ERROR(check(type, n, true, &info));
  const GgmlQuantFn fn = best_quant(type);
  const size_t nb = n / info->block_size;
  return parallel_for(
      chunk_count(nb, kBlocksPerChunk),
      [&](size_t c) {
        const size_t lo = c * kBlocksPerChunk;
        const size_t len = nb - lo < kBlocksPerChunk ? nb - lo : kBlocksPerChunk;
        fn(x + lo * info->block_size, blocks + lo * info->type_size, len);
        return Status::ok();
      },
      cancel);
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
