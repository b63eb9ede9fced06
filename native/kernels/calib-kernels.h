// SPDX-License-Identifier: MIT
// Internal: the inner kernels of the calibration statistics (calib.h). kernels/calib.cpp cuts the work into
// fixed blocks and packs the inputs; these kernels do the arithmetic and are chosen by the SIMD tier.
#pragma once

#include <cstddef>

namespace ws {

// Packed panels: features in slivers of 16, each sliver [k tokens][16 features] (zero past the last feature),
// slivers `stride` floats apart.
constexpr size_t kCalibSliver = 16;
// Rows of G one micro-kernel call computes (a divisor of kCalibSliver), and the most slivers of columns.
constexpr size_t kCalibMr = 8;
constexpr int kCalibMaxNs = 3;

// c[r][q] (row stride ldc) = (first ? 0 : c[r][q]) + sum over t < k of a[16 t + r] * b[s * stride + 16 t + q % 16]
// for r < 8, q < 16 ns (s = q / 16), ns in 1..3, in token order. `a` points into a packed sliver (its row
// offset included).
using CalibMicroFn = void (*)(const float* a, const float* b, size_t stride, int ns, size_t k, float* c, size_t ldc,
                              bool first);

// sums[j] += double(x[j])^2 for j < n (exact products, one rounding per sum).
using CalibSumsqRowFn = void (*)(const float* x, size_t n, double* sums);

CalibMicroFn calib_micro_avx2_fn();
CalibMicroFn calib_micro_avx512_fn();
CalibSumsqRowFn calib_sumsq_row_avx512_fn();

}  // namespace ws
