// SPDX-License-Identifier: MIT
// Reference quantizers for the legacy ggml block formats, byte-identical to ggml's quantize_row_*_ref: the
// same f32 operations in the same order (no contraction: this file is compiled as ISO C++ without FMA), the
// same truncating and rounding conversions, the same tie-breaking in the max search.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

#include "weightsmith/float-bits.h"
#include "weightsmith/ggml-quants.h"
#include "weightsmith/ggml-types.h"
#include "weightsmith/thread-pool.h"

namespace ws {

uint16_t ggml_fp32_to_fp16(float f) {
  const uint32_t w = f32_bits(f);
  if ((w & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(((w >> 16) & 0x8000u) | 0x7e00u);
  return f32_to_f16(w);
}

namespace {

inline void put_half(uint8_t* p, float v) {
  const uint16_t h = ggml_fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// The signed value of largest magnitude (the first one on ties), as ggml's q4_0 / q5_0 search it.
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void q4_0(const float* x, uint8_t* b) {
  const float max = signed_absmax(x, 32);
  const float d = max / -8;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 16; ++j) {
    const float x0 = x[j] * id;
    const float x1 = x[16 + j] * id;
    const int q0 = static_cast<int8_t>(x0 + 8.5f);
    const int q1 = static_cast<int8_t>(x1 + 8.5f);
    b[2 + j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | ((q1 < 15 ? q1 : 15) << 4));
  }
}

void q4_1(const float* x, uint8_t* b) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 15;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, min);
  for (int j = 0; j < 16; ++j) {
    const float x0 = (x[j] - min) * id;
    const float x1 = (x[16 + j] - min) * id;
    const int q0 = static_cast<int8_t>(x0 + 0.5f);
    const int q1 = static_cast<int8_t>(x1 + 0.5f);
    b[4 + j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | ((q1 < 15 ? q1 : 15) << 4));
  }
}

void q5_0(const float* x, uint8_t* b) {
  const float max = signed_absmax(x, 32);
  const float d = max / -16;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const float x0 = x[j] * id;
    const float x1 = x[16 + j] * id;
    int q0 = static_cast<int8_t>(x0 + 16.5f);
    int q1 = static_cast<int8_t>(x1 + 16.5f);
    q0 = q0 < 31 ? q0 : 31;
    q1 = q1 < 31 ? q1 : 31;
    b[6 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= ((static_cast<uint32_t>(q0) & 0x10u) >> 4) << j;
    qh |= ((static_cast<uint32_t>(q1) & 0x10u) >> 4) << (j + 16);
  }
  std::memcpy(b + 2, &qh, 4);
}

void q5_1(const float* x, uint8_t* b) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  const float d = (max - min) / 31;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  put_half(b + 2, min);
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    const float x0 = (x[j] - min) * id;
    const float x1 = (x[16 + j] - min) * id;
    const uint32_t q0 = static_cast<uint8_t>(x0 + 0.5f);
    const uint32_t q1 = static_cast<uint8_t>(x1 + 0.5f);
    b[8 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= ((q0 & 0x10u) >> 4) << j;
    qh |= ((q1 & 0x10u) >> 4) << (j + 16);
  }
  std::memcpy(b + 4, &qh, 4);
}

void q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(b, d);
  for (int j = 0; j < 32; ++j) b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
}

using QuantFn = void (*)(const float*, uint8_t*);

QuantFn quant_fn(uint32_t type) {
  switch (type) {
    case 2: return q4_0;
    case 3: return q4_1;
    case 6: return q5_0;
    case 7: return q5_1;
    case 8: return q8_0;
    default: return nullptr;
  }
}

Status check(uint32_t type, size_t n, QuantFn* fn, const GgmlTypeInfo** info) {
  *info = ggml_type_info(type);
  *fn = quant_fn(type);
  if (*info == nullptr || *fn == nullptr)
    return Status(Code::kDtype, std::string("quantization to ggml type ") + (*info ? (*info)->name : std::to_string(type)) +
                                    " is not supported");
  if (n % (*info)->block_size != 0)
    return Status(Code::kShape, std::to_string(n) + " values are not a whole number of " + (*info)->name + " blocks of " +
                                    std::to_string((*info)->block_size));
  return Status::ok();
}

}  // namespace

bool ggml_can_quantize(uint32_t type) { return quant_fn(type) != nullptr; }

Status ggml_quantize_ref(uint32_t type, const float* x, uint8_t* blocks, size_t n) {
  QuantFn fn;
  const GgmlTypeInfo* info;
  WS_RETURN_IF_ERROR(check(type, n, &fn, &info));
  for (size_t i = 0; i < n / info->block_size; ++i) fn(x + i * info->block_size, blocks + i * info->type_size);
  return Status::ok();
}

Status ggml_quantize(uint32_t type, const float* x, uint8_t* blocks, size_t n, const std::atomic<bool>* cancel) {
  QuantFn fn;
  const GgmlTypeInfo* info;
  WS_RETURN_IF_ERROR(check(type, n, &fn, &info));
  const size_t nb = n / info->block_size;
  constexpr size_t kBlocksPerChunk = 2048;
  return parallel_for(
      chunk_count(nb, kBlocksPerChunk),
      [&](size_t c) {
        const size_t lo = c * kBlocksPerChunk;
        const size_t hi = lo + kBlocksPerChunk < nb ? lo + kBlocksPerChunk : nb;
        for (size_t i = lo; i < hi; ++i) fn(x + i * info->block_size, blocks + i * info->type_size);
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
