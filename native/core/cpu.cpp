// SPDX-License-Identifier: MIT
#include "weightsmith/cpu.h"

#include <atomic>

namespace ws {

namespace {
CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's model also checks that the OS saves the AVX state (OSXSAVE + XCR0).
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
#endif
  return f;
}
std::atomic<int> g_simd_cap{static_cast<int>(SimdLevel::kAvx512)};
}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

SimdLevel simd_supported() {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return SimdLevel::kBaseline;
  return f.avx512f && f.avx512bw ? SimdLevel::kAvx512 : SimdLevel::kAvx2;
}

SimdLevel simd_level() {
  const int cap = g_simd_cap.load(std::memory_order_relaxed);
  const int sup = static_cast<int>(simd_supported());
  return static_cast<SimdLevel>(cap < sup ? cap : sup);
}

void set_simd_level(SimdLevel level) { g_simd_cap.store(static_cast<int>(level), std::memory_order_relaxed); }

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
    default: return "baseline";
  }
}

}  // namespace ws
