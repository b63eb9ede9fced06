// SPDX-License-Identifier: MIT
// Internal: the conversion dispatch table. Reference kernels register first; optimized CPU kernels and the
// x86 AVX2/F16C kernels override the pairs they implement (BLIS-style context initialisation).
#pragma once

#include <cstddef>

#include "weightsmith/dtype.h"

namespace ws {

// Converts n elements; buffers may be unaligned and must not overlap.
using ConvertFn = void (*)(const void* src, void* dst, size_t n);

struct ConvertTable {
  ConvertFn fn[kDTypeCount][kDTypeCount] = {};
};

void convert_register_ref(ConvertTable* t);   // kernels/ref/convert-ref.cpp: every arithmetic pair
void convert_register_cpu(ConvertTable* t);   // kernels/cpu/convert-cpu.cpp: portable fast paths
void convert_register_avx2(ConvertTable* t);  // kernels/cpu/arch/x86/convert-avx2.cpp: AVX2 + F16C
void convert_register_avx512(ConvertTable* t);  // kernels/cpu/arch/x86/convert-avx512.cpp: AVX-512 F/BW

}  // namespace ws
