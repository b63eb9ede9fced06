// SPDX-License-Identifier: MIT
// Internal: the conversion dispatch table. Reference kernels register first; optimized CPU kernels and the
// x86 AVX2/F16C kernels override the pairs they implement (BLIS-style context initialisation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "weightsmith/dtype.h"

namespace ws {

// Converts n elements; buffers may be unaligned and must not overlap.
using ConvertFn = void (*)(const void* src, void* dst, size_t n);

struct ConvertTable {
  ConvertFn fn[kDTypeCount][kDTypeCount] = {};
};

// Applies a per-element bit rule (float-bits.h) to elements [i, n): the loop of the portable kernels and the
// tail of the SIMD ones. Unaligned-safe.
template <typename S, typename D, D (*Fn)(S)>
inline void map_elements(const void* src, void* dst, size_t i, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  for (; i < n; ++i) {
    S x;
    std::memcpy(&x, s + i * sizeof(S), sizeof(S));
    const D y = Fn(x);
    std::memcpy(d + i * sizeof(D), &y, sizeof(D));
  }
}

void convert_register_ref(ConvertTable* t);   // kernels/ref/convert-ref.cpp: every arithmetic pair
void convert_register_cpu(ConvertTable* t);   // kernels/cpu/convert-cpu.cpp: portable fast paths
void convert_register_avx2(ConvertTable* t);  // kernels/cpu/arch/x86/convert-avx2.cpp: AVX2 + F16C
void convert_register_avx512(ConvertTable* t);  // kernels/cpu/arch/x86/convert-avx512.cpp: AVX-512 F/BW

}  // namespace ws
