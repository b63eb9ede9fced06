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
#endif
  return f;
}
std::atomic<bool> g_simd_enabled{true};
}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool simd_enabled() { return g_simd_enabled.load(std::memory_order_relaxed); }
void set_simd_enabled(bool on) { g_simd_enabled.store(on, std::memory_order_relaxed); }

}  // namespace ws
