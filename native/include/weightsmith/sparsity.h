// SPDX-License-Identifier: MIT
// Pruning masks: scores, selection and application (FORMATS.md c1; DESIGN.md section 4, Sparsity).
//
// Scores (f32, from f32/f16/bf16 weights): magnitude |W_ij|; Wanda |W_ij| * norms[j] (one f32 product);
// random: a hash of (seed, row-major index), uniform and independent of the weights. A NaN or infinite weight,
// norm or score is refused with kNonFinite naming the first index.
// Selection, in the total order "higher score first, then lower index": the mask keeps the best elements.
//   - unstructured, per row: the `prune` lowest of every row are pruned; per tensor: the `prune` lowest of the
//     whole tensor;
//   - N:M: in every group of M consecutive elements of a row, the N best are kept (M must divide the row).
// A base mask (optional, same layout) extends an existing sparsity: its pruned elements rank below every other
// element (so they are pruned first and count towards the target) and stay pruned whatever the target.
// Masks are bit-packed LSB-first per row (numpy.packbits(mask, axis=-1, bitorder='little')): row r takes
// ceil(cols/8) bytes, bit c%8 of byte c/8 is 1 for a kept element; padding bits are 0.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

enum class ScoreKind : int { kMagnitude = 0, kWanda = 1, kRandom = 2 };

struct MaskSpec {
  size_t rows = 0, cols = 0;
  DType dtype = DType::kF32;       // the weight dtype: f32, f16 or bf16
  ScoreKind score = ScoreKind::kMagnitude;
  const float* norms = nullptr;    // Wanda: cols values
  uint64_t seed = 0;               // random scores
  bool per_row = true;             // unstructured: the comparison group is a row (else the whole tensor)
  uint64_t prune = 0;              // unstructured: elements to prune per row (per_row) or in the tensor
  uint32_t n = 0, m = 0;           // N:M when m > 0: keep n of every m
  const uint8_t* base = nullptr;   // optional existing mask
};

inline size_t mask_row_bytes(size_t cols) { return (cols + 7) / 8; }

Status sparsity_mask(const MaskSpec& spec, const void* w, uint8_t* bits, const std::atomic<bool>* cancel = nullptr);
// The scalar reference (the spec): a full sort of every comparison group.
Status sparsity_mask_ref(const MaskSpec& spec, const void* w, uint8_t* bits);

// out = w where the mask keeps, zero bytes elsewhere; any element size (1, 2, 4 or 8 bytes). out may be w.
Status sparsity_apply(const void* w, size_t elem_size, size_t rows, size_t cols, const uint8_t* bits, void* out,
                      const std::atomic<bool>* cancel = nullptr);

// Kept elements per row.
void mask_row_counts(const uint8_t* bits, size_t rows, size_t cols, uint32_t* counts);

// The random score of the element at row-major index i (the top 31 bits of a SplitMix64 hash of seed and i).
inline uint32_t random_score_bits(uint64_t seed, uint64_t i) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (i + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<uint32_t>(z >> 33);
}

}  // namespace ws
