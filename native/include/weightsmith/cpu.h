// SPDX-License-Identifier: MIT
// Runtime CPU feature detection. The binary is built for the portable x86-64 baseline; files under
// kernels/cpu/arch/x86 are compiled with AVX2/FMA/F16C and only called when these report support.
#pragma once

namespace ws {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
};

const CpuFeatures& cpu_features();

// Optimized kernels are used when supported unless disabled (tests compare both paths).
bool simd_enabled();
void set_simd_enabled(bool on);

}  // namespace ws
