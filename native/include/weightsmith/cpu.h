// SPDX-License-Identifier: MIT
// Runtime CPU feature detection. The binary is built for the portable x86-64 baseline; kernels under
// kernels/cpu/arch/x86 switch on AVX2/FMA/F16C or AVX-512 per function and are only registered when these
// report support.
#pragma once

namespace ws {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
};

const CpuFeatures& cpu_features();

// The widest SIMD tier kernels may use: the portable baseline, AVX2 (+FMA, F16C), or AVX-512 (F, BW).
// Default: the widest the CPU supports. Lowering it lets tests compare every tier with the reference.
enum class SimdLevel : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };
SimdLevel simd_level();           // the level in force (never above what the CPU supports)
SimdLevel simd_supported();       // the widest the CPU supports
void set_simd_level(SimdLevel level);
const char* simd_level_name(SimdLevel level);

}  // namespace ws
