// SPDX-License-Identifier: MIT
// Portable fast paths (x86-64 baseline / any CPU): straight loops the compiler vectorizes with the baseline
// instruction set, and small lookup tables for 8-bit float decodes. Bit-identical to the reference.
#include <cstdint>
#include <cstring>

#include "../convert-kernels.h"
#include "weightsmith/float-bits.h"

namespace ws {

namespace {

void f32_to_bf16_cpu(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; ++i) {
    uint32_t x;
    std::memcpy(&x, s + 4 * i, 4);
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    const uint32_t nan = (x >> 16) | 0x40u;
    const uint16_t h = static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
    std::memcpy(d + 2 * i, &h, 2);
  }
}

void bf16_to_f32_cpu(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, s + 2 * i, 2);
    uint32_t x = static_cast<uint32_t>(h) << 16;
    x |= (x & 0x7fffffffu) > 0x7f800000u ? 0x00400000u : 0u;
    std::memcpy(d + 4 * i, &x, 4);
  }
}

void f32_to_f16_cpu(const void* src, void* dst, size_t n) { map_elements<uint32_t, uint16_t, f32_to_f16>(src, dst, 0, n); }

struct F16Table {
  uint32_t v[65536];
  F16Table() {
    for (uint32_t i = 0; i < 65536; ++i) v[i] = f16_to_f32(static_cast<uint16_t>(i));
  }
};
const F16Table& f16_table() {
  static const F16Table* t = new F16Table();
  return *t;
}

void f16_to_f32_cpu(const void* src, void* dst, size_t n) {
  const uint32_t* tab = f16_table().v;
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, s + 2 * i, 2);
    std::memcpy(d + 4 * i, &tab[h], 4);
  }
}

void f32_to_f64_cpu(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; ++i) {
    uint32_t x;
    std::memcpy(&x, s + 4 * i, 4);
    // Hardware widening quiets a signalling NaN exactly as the reference does; the value is exact.
    const double v = static_cast<double>(f32_from_bits(x));
    std::memcpy(d + 8 * i, &v, 8);
  }
}

void f64_to_f32_cpu(const void* src, void* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; ++i) {
    double v;
    std::memcpy(&v, s + 8 * i, 8);
    const uint32_t x = mf_encode(v, kFmtF32);
    std::memcpy(d + 4 * i, &x, 4);
  }
}

template <const MiniFloat& F>
struct Fp8Table {
  uint32_t v[256];
  Fp8Table() {
    for (uint32_t i = 0; i < 256; ++i) v[i] = mf_encode(mf_decode(i, F), kFmtF32);
  }
};

template <const MiniFloat& F>
void fp8_to_f32_cpu(const void* src, void* dst, size_t n) {
  static const Fp8Table<F>* table = new Fp8Table<F>();
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (size_t i = 0; i < n; ++i) std::memcpy(d + 4 * i, &table->v[s[i]], 4);
}

// f16 / bf16 -> fp8 through the exact f32 value: still one rounding.
template <uint32_t (*Widen)(uint16_t), uint8_t (*Fn)(uint32_t)>
uint8_t half_to_fp8(uint16_t h) {
  return Fn(Widen(h));
}

}  // namespace

void convert_register_cpu(ConvertTable* t) {
  auto at = [&](DType s, DType d) -> ConvertFn& { return t->fn[static_cast<size_t>(s)][static_cast<size_t>(d)]; };
  at(DType::kF32, DType::kBF16) = f32_to_bf16_cpu;
  at(DType::kBF16, DType::kF32) = bf16_to_f32_cpu;
  at(DType::kF32, DType::kF16) = f32_to_f16_cpu;
  at(DType::kF16, DType::kF32) = f16_to_f32_cpu;
  at(DType::kF32, DType::kF64) = f32_to_f64_cpu;
  at(DType::kF64, DType::kF32) = f64_to_f32_cpu;
  at(DType::kF8E4M3, DType::kF32) = fp8_to_f32_cpu<kFmtE4M3>;
  at(DType::kF8E5M2, DType::kF32) = fp8_to_f32_cpu<kFmtE5M2>;
  // map_elements from element 0: the whole buffer.
  at(DType::kF32, DType::kF8E4M3) = [](const void* s, void* d, size_t n) { map_elements<uint32_t, uint8_t, f32_to_e4m3>(s, d, 0, n); };
  at(DType::kF32, DType::kF8E5M2) = [](const void* s, void* d, size_t n) { map_elements<uint32_t, uint8_t, f32_to_e5m2>(s, d, 0, n); };
  at(DType::kF16, DType::kF8E4M3) = [](const void* s, void* d, size_t n) {
    map_elements<uint16_t, uint8_t, half_to_fp8<f16_to_f32, f32_to_e4m3>>(s, d, 0, n);
  };
  at(DType::kF16, DType::kF8E5M2) = [](const void* s, void* d, size_t n) {
    map_elements<uint16_t, uint8_t, half_to_fp8<f16_to_f32, f32_to_e5m2>>(s, d, 0, n);
  };
  at(DType::kBF16, DType::kF8E4M3) = [](const void* s, void* d, size_t n) {
    map_elements<uint16_t, uint8_t, half_to_fp8<bf16_to_f32, f32_to_e4m3>>(s, d, 0, n);
  };
  at(DType::kBF16, DType::kF8E5M2) = [](const void* s, void* d, size_t n) {
    map_elements<uint16_t, uint8_t, half_to_fp8<bf16_to_f32, f32_to_e5m2>>(s, d, 0, n);
  };
}

}  // namespace ws
