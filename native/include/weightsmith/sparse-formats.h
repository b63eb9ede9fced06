// SPDX-License-Identifier: MIT
// Compressed storage of pruned 2-D weights (FORMATS.md b4 legacy sparse formats, b6 2:4 metadata). An element is
// non-zero when any of its bytes is: -0.0 is a value, so round trips are bit-exact. Element sizes 1, 2, 4, 8.
//   sparse-bitmask: values = the non-zeros in row-major order; bitmask = packbits(non-zero, little) per row;
//     row_offsets = exclusive prefix sum of per-row counts.
//   sparse-24-bitmask: per group of 4, the non-zeros completed with the first zero positions up to two, in
//     column order: values [rows, cols/2] and their bitmask.
//   nv24: per group of 4, the two positions PyTorch's 2:4 conversion stores (0000 -> 2,3; 1000 -> 0,2...),
//     values [rows, cols/2], and the nibble idx0 | idx1 << 2 packed four to a 16-bit word, LSB-first.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/status.h"

namespace ws {

enum class SparseFormat : int { kBitmask = 0, kBitmask24 = 1, kNv24 = 2 };

// Non-zeros per row (for sparse-bitmask's value count and row offsets).
Status sparse_count_rows(const void* w, size_t es, size_t rows, size_t cols, uint64_t* counts,
                         const std::atomic<bool>* cancel = nullptr);

// values: sparse-bitmask: sum(counts) elements (row_offsets: the exclusive prefix sums of counts); 2:4 formats:
// rows * cols / 2 elements. bitmask: rows * ceil(cols/8) bytes (bitmask formats); meta: rows * ceil(cols/16)
// words (nv24). A 2:4 group with more than two non-zeros is kShape, naming its row and first column.
Status sparse_compress(SparseFormat f, const void* w, size_t es, size_t rows, size_t cols, const uint64_t* row_offsets,
                       void* values, uint8_t* bitmask, uint16_t* meta, const std::atomic<bool>* cancel = nullptr);

// The dense tensor (out: rows * cols elements, zeroed by the caller). n_values: the values' element count
// (checked against the bitmask for the bitmask formats).
Status sparse_decompress(SparseFormat f, const void* values, size_t n_values, const uint8_t* bitmask, const uint16_t* meta,
                         size_t es, size_t rows, size_t cols, void* out, const std::atomic<bool>* cancel = nullptr);

}  // namespace ws
