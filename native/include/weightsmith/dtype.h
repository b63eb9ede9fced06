// SPDX-License-Identifier: MIT
// The dtype table: one row per safetensors dtype. lib/dtype.ts mirrors it and test/unit/dtype.test.ts checks
// that the two agree (names, safetensors names, bit widths, safetensors order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ws {

enum class DType : uint8_t {
  kF64 = 0,
  kF32,
  kF16,
  kBF16,
  kF8E4M3,
  kF8E5M2,
  kI64,
  kI32,
  kI16,
  kI8,
  kU64,
  kU32,
  kU16,
  kU8,
  kBool,
  // Read/write pass-through only: no arithmetic, no conversion.
  kF8E8M0,
  kF8E4M3Fnuz,
  kF8E5M2Fnuz,
  kF6E2M3,
  kF6E3M2,
  kF4,
  kC64,
  kCount
};

enum class DTypeKind : uint8_t { kFloat, kSigned, kUnsigned, kBool, kPassThrough };

struct DTypeInfo {
  DType dtype;
  const char* name;     // our name: "f32"
  const char* st_name;  // safetensors header name: "F32"
  uint8_t bits;         // storage bits per element (4 and 6 for sub-byte types)
  uint8_t st_rank;      // position in the safetensors Dtype enum (the reference writer sorts by it, descending)
  DTypeKind kind;
};

inline constexpr DTypeInfo kDTypeTable[] = {
    {DType::kF64, "f64", "F64", 64, 19, DTypeKind::kFloat},
    {DType::kF32, "f32", "F32", 32, 17, DTypeKind::kFloat},
    {DType::kF16, "f16", "F16", 16, 13, DTypeKind::kFloat},
    {DType::kBF16, "bf16", "BF16", 16, 14, DTypeKind::kFloat},
    {DType::kF8E4M3, "f8_e4m3", "F8_E4M3", 8, 7, DTypeKind::kFloat},
    {DType::kF8E5M2, "f8_e5m2", "F8_E5M2", 8, 6, DTypeKind::kFloat},
    {DType::kI64, "i64", "I64", 64, 20, DTypeKind::kSigned},
    {DType::kI32, "i32", "I32", 32, 15, DTypeKind::kSigned},
    {DType::kI16, "i16", "I16", 16, 11, DTypeKind::kSigned},
    {DType::kI8, "i8", "I8", 8, 5, DTypeKind::kSigned},
    {DType::kU64, "u64", "U64", 64, 21, DTypeKind::kUnsigned},
    {DType::kU32, "u32", "U32", 32, 16, DTypeKind::kUnsigned},
    {DType::kU16, "u16", "U16", 16, 12, DTypeKind::kUnsigned},
    {DType::kU8, "u8", "U8", 8, 4, DTypeKind::kUnsigned},
    {DType::kBool, "bool", "BOOL", 8, 0, DTypeKind::kBool},
    {DType::kF8E8M0, "f8_e8m0", "F8_E8M0", 8, 8, DTypeKind::kPassThrough},
    {DType::kF8E4M3Fnuz, "f8_e4m3fnuz", "F8_E4M3FNUZ", 8, 9, DTypeKind::kPassThrough},
    {DType::kF8E5M2Fnuz, "f8_e5m2fnuz", "F8_E5M2FNUZ", 8, 10, DTypeKind::kPassThrough},
    {DType::kF6E2M3, "f6_e2m3", "F6_E2M3", 6, 2, DTypeKind::kPassThrough},
    {DType::kF6E3M2, "f6_e3m2", "F6_E3M2", 6, 3, DTypeKind::kPassThrough},
    {DType::kF4, "f4", "F4", 4, 1, DTypeKind::kPassThrough},
    {DType::kC64, "c64", "C64", 64, 18, DTypeKind::kPassThrough},
};

inline constexpr size_t kDTypeCount = static_cast<size_t>(DType::kCount);
static_assert(sizeof(kDTypeTable) / sizeof(kDTypeTable[0]) == kDTypeCount, "one table row per dtype");

constexpr bool dtype_table_in_order() {
  for (size_t i = 0; i < kDTypeCount; ++i) {
    if (static_cast<size_t>(kDTypeTable[i].dtype) != i) return false;
  }
  return true;
}
static_assert(dtype_table_in_order(), "kDTypeTable rows are indexed by DType");

constexpr bool dtype_st_ranks_unique() {
  for (size_t i = 0; i < kDTypeCount; ++i)
    for (size_t j = i + 1; j < kDTypeCount; ++j)
      if (kDTypeTable[i].st_rank == kDTypeTable[j].st_rank) return false;
  return true;
}
static_assert(dtype_st_ranks_unique(), "safetensors enum positions are distinct");

constexpr const DTypeInfo& dtype_info(DType d) { return kDTypeTable[static_cast<size_t>(d)]; }

static_assert(dtype_info(DType::kF64).bits == sizeof(double) * 8, "f64 width");
static_assert(dtype_info(DType::kF32).bits == sizeof(float) * 8, "f32 width");
static_assert(dtype_info(DType::kF16).bits == sizeof(uint16_t) * 8, "f16 width");
static_assert(dtype_info(DType::kBF16).bits == sizeof(uint16_t) * 8, "bf16 width");
static_assert(dtype_info(DType::kI64).bits == sizeof(int64_t) * 8, "i64 width");
static_assert(dtype_info(DType::kI32).bits == sizeof(int32_t) * 8, "i32 width");
static_assert(dtype_info(DType::kI16).bits == sizeof(int16_t) * 8, "i16 width");
static_assert(dtype_info(DType::kI8).bits == sizeof(int8_t) * 8, "i8 width");
static_assert(dtype_info(DType::kU64).bits == sizeof(uint64_t) * 8, "u64 width");
static_assert(dtype_info(DType::kU32).bits == sizeof(uint32_t) * 8, "u32 width");
static_assert(dtype_info(DType::kU16).bits == sizeof(uint16_t) * 8, "u16 width");
static_assert(dtype_info(DType::kU8).bits == sizeof(uint8_t) * 8, "u8 width");
static_assert(dtype_info(DType::kBool).bits == sizeof(bool) * 8, "bool width");
static_assert(dtype_info(DType::kC64).bits == 2 * sizeof(float) * 8, "c64 width");

// Bytes per element for byte-sized dtypes; 0 for sub-byte ones (f4, f6_*).
constexpr size_t dtype_size(DType d) { return dtype_info(d).bits % 8 == 0 ? dtype_info(d).bits / 8 : 0; }

constexpr bool dtype_is_arith(DType d) { return dtype_info(d).kind != DTypeKind::kPassThrough; }

// Lookups by name; false when unknown. Safetensors names are case-sensitive ("F32", never "f32").
bool dtype_from_st_name(std::string_view name, DType* out);
bool dtype_from_name(std::string_view name, DType* out);

}  // namespace ws
