// SPDX-License-Identifier: MIT
// Error statistics between a reference and an approximation (quantization and compression reports).
#pragma once

#include <atomic>
#include <cstddef>

#include "weightsmith/status.h"

namespace ws {

struct CompareSums {
  double sse = 0;     // sum (a - b)^2
  double max_abs = 0; // max |a - b|
  double aa = 0;      // sum a^2
  double bb = 0;      // sum b^2
  double ab = 0;      // sum a * b
  size_t n = 0;
};

// Sums in f64 over fixed chunks, combined in chunk order: the same result for any thread count.
Status compare_f32(const float* a, const float* b, size_t n, CompareSums* out, const std::atomic<bool>* cancel = nullptr);

}  // namespace ws
