// SPDX-License-Identifier: MIT
// Seeded standard normals (see random.h): chunks of 32768 pairs on the pool, each pair a pure function of its
// index, so the output does not depend on the thread count.
#include "weightsmith/random.h"

#include <cmath>
#include <algorithm>

#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;

inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

Status gaussian_fill(uint64_t seed, float* out, size_t n, const std::atomic<bool>* cancel) {
  constexpr size_t kPairs = 32768;
  const size_t pairs = (n + 1) / 2;
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  constexpr double kInv53 = 1.0 / 9007199254740992.0;
  return parallel_for(
      chunk_count(pairs, kPairs),
      [&](size_t c) {
        const size_t end = std::min(pairs, (c + 1) * kPairs);
        for (size_t p = c * kPairs; p < end; ++p) {
          const uint64_t o1 = mix(seed + (2 * p + 1) * kGamma), o2 = mix(seed + (2 * p + 2) * kGamma);
          const double u1 = 1.0 - static_cast<double>(o1 >> 11) * kInv53;
          const double u2 = static_cast<double>(o2 >> 11) * kInv53;
          const double r = std::sqrt(-2.0 * std::log(u1));
          out[2 * p] = static_cast<float>(r * std::cos(kTwoPi * u2));
          if (2 * p + 1 < n) out[2 * p + 1] = static_cast<float>(r * std::sin(kTwoPi * u2));
        }
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
