// SPDX-License-Identifier: MIT
// dtype conversion, the first kernel family. Semantics (the scalar reference in kernels/ref/convert-ref.cpp
// is the spec, optimized variants must match it bit for bit):
// - float -> float: round to nearest, ties to even, in one rounding step; subnormals kept. NaN stays NaN and
//   comes out quiet, keeping the top payload bits. Overflow to f16/bf16 gives +-Inf (IEEE); f8_e4m3 and
//   f8_e5m2 saturate to +-448 / +-57344 (also for +-Inf inputs). NaN -> f8_e4m3 is 0x7f (sign kept).
// - float -> integer: round half to even, saturate to the type's range, NaN -> 0.
// - integer -> float: one rounding, to nearest even. integer -> integer: saturating. bool: nonzero -> 1.
// - Pass-through dtypes convert only to themselves (a copy); anything else is kDtype.
#pragma once

#include <atomic>
#include <cstddef>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

enum class Backend { kAuto, kRef };

// Converts n elements (single thread). Buffers may be unaligned; they must not overlap.
Status convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, size_t n, Backend backend = Backend::kAuto);

// The same, cut into fixed-size chunks run on the thread pool (bit-identical for any thread count).
Status convert_parallel(const void* src, DType src_dtype, void* dst, DType dst_dtype, size_t n,
                        const std::atomic<bool>* cancel = nullptr, Backend backend = Backend::kAuto);

// Elements per chunk in convert_parallel: fixed, so chunk boundaries never depend on the thread count.
constexpr size_t kConvertChunk = 1 << 16;

}  // namespace ws
