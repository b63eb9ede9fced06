// SPDX-License-Identifier: MIT
// The ggml tensor type table (ids of ggml's include/ggml.h; block sizes and bytes per block of its
// ggml-common.h block structs). Removed ids (4, 5, 31-33, 36-38) have no row.
#pragma once

#include <cstdint>

#include "weightsmith/dtype.h"

namespace ws {

struct GgmlTypeInfo {
  uint32_t id;
  const char* name;      // lower case, as weightsmith names it: "q4_0", "f16"
  uint32_t block_size;   // elements per block
  uint32_t type_size;    // bytes per block
  DType plain;           // the weightsmith dtype of a non-block type; kCount for block-quantized types
};

inline constexpr uint32_t kGgmlTypeCount = 43;

inline constexpr GgmlTypeInfo kGgmlTypes[] = {
    {0, "f32", 1, 4, DType::kF32},         {1, "f16", 1, 2, DType::kF16},
    {2, "q4_0", 32, 18, DType::kCount},    {3, "q4_1", 32, 20, DType::kCount},
    {6, "q5_0", 32, 22, DType::kCount},    {7, "q5_1", 32, 24, DType::kCount},
    {8, "q8_0", 32, 34, DType::kCount},    {9, "q8_1", 32, 36, DType::kCount},
    {10, "q2_k", 256, 84, DType::kCount},  {11, "q3_k", 256, 110, DType::kCount},
    {12, "q4_k", 256, 144, DType::kCount}, {13, "q5_k", 256, 176, DType::kCount},
    {14, "q6_k", 256, 210, DType::kCount}, {15, "q8_k", 256, 292, DType::kCount},
    {16, "iq2_xxs", 256, 66, DType::kCount}, {17, "iq2_xs", 256, 74, DType::kCount},
    {18, "iq3_xxs", 256, 98, DType::kCount}, {19, "iq1_s", 256, 50, DType::kCount},
    {20, "iq4_nl", 32, 18, DType::kCount}, {21, "iq3_s", 256, 110, DType::kCount},
    {22, "iq2_s", 256, 82, DType::kCount}, {23, "iq4_xs", 256, 136, DType::kCount},
    {24, "i8", 1, 1, DType::kI8},          {25, "i16", 1, 2, DType::kI16},
    {26, "i32", 1, 4, DType::kI32},        {27, "i64", 1, 8, DType::kI64},
    {28, "f64", 1, 8, DType::kF64},        {29, "iq1_m", 256, 56, DType::kCount},
    {30, "bf16", 1, 2, DType::kBF16},      {34, "tq1_0", 256, 54, DType::kCount},
    {35, "tq2_0", 256, 66, DType::kCount}, {39, "mxfp4", 32, 17, DType::kCount},
    {40, "nvfp4", 64, 36, DType::kCount},  {41, "q1_0", 128, 18, DType::kCount},
    {42, "q2_0", 64, 18, DType::kCount},
};

// The row for a type id, or nullptr for ids that are out of range or removed.
constexpr const GgmlTypeInfo* ggml_type_info(uint64_t id) {
  for (const auto& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

}  // namespace ws
