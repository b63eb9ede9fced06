// SPDX-License-Identifier: MIT
// Internal: reading f32/f16/bf16 weights as f32 and rounding f32 results back to the weight dtype, the way a
// torch op on an f16/bf16 tensor computes (in f32, then one rounding). Shared by the scale-based quantizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "weightsmith/dtype.h"
#include "weightsmith/float-bits.h"

namespace ws {

template <DType D>
inline float load_weight(const uint8_t* p, size_t i) {
  if constexpr (D == DType::kF32) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  } else {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return f32_from_bits(D == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h));
  }
}

// The same with the dtype known at run time (f32, f16 or bf16).
inline float load_weight_any(DType d, const uint8_t* p, size_t i) {
  if (d == DType::kF32) return load_weight<DType::kF32>(p, i);
  return d == DType::kBF16 ? load_weight<DType::kBF16>(p, i) : load_weight<DType::kF16>(p, i);
}

template <DType D>
inline float round_to_weight(float v) {
  if constexpr (D == DType::kBF16) return f32_from_bits(bf16_to_f32(f32_to_bf16(f32_bits(v))));
  else if constexpr (D == DType::kF16) return f32_from_bits(f16_to_f32(f32_to_f16(f32_bits(v))));
  else return v;
}

// torch.finfo(dtype).eps
template <DType D>
constexpr float weight_eps() {
  return D == DType::kBF16 ? 0.0078125f : D == DType::kF16 ? 0.0009765625f : 1.1920928955078125e-07f;
}

}  // namespace ws
