// SPDX-License-Identifier: MIT
// Internal: the sort keys of pruning scores. key = 0 for an element a base mask prunes, else the score's f32 bit
// pattern + 1 (scores are non-negative and finite, so integer order is score order). Ranking by (key, -index)
// ascending lists the elements in pruning order.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "weight-math.h"
#include "weightsmith/float-bits.h"
#include "weightsmith/sparsity.h"

namespace ws {

inline bool mask_bit(const uint8_t* bits, size_t cols, size_t r, size_t c) {
  return (bits[r * mask_row_bytes(cols) + c / 8] >> (c % 8)) & 1u;
}

// The key of element (r, c); false (and *bad set) when the weight or its score is not finite.
inline bool score_key(const MaskSpec& s, const uint8_t* w, size_t r, size_t c, uint32_t* key) {
  const size_t i = r * s.cols + c;
  const float v = load_weight_any(s.dtype, w, i);
  if (!std::isfinite(v)) return false;
  uint32_t bits;
  if (s.score == ScoreKind::kRandom) {
    bits = random_score_bits(s.seed, i);
  } else {
    float score = std::fabs(v);
    if (s.score == ScoreKind::kWanda) score = score * s.norms[c];
    if (!std::isfinite(score)) return false;
    bits = f32_bits(score) & 0x7fffffffu;  // -0 -> 0 (a zero norm times a negative weight)
  }
  *key = s.base && !mask_bit(s.base, s.cols, r, c) ? 0u : bits + 1u;
  return true;
}

// AVX-512 row kernels (kernels/cpu/arch/x86/sparsity-avx512.cpp), chosen when simd_level() >= kAvx512.
// Keys of row r for magnitude and Wanda scores: false when the row holds a non-finite weight or score (the caller
// then takes the scalar path, which names the index). Random scores are not handled (false).
bool sparsity_row_keys_avx512(const MaskSpec& s, const uint8_t* w, size_t r, uint32_t* keys);
// N:M for M = 4, 8 or 16 (false for other M): the mask bits of one row.
bool sparsity_nm_row_avx512(const uint32_t* keys, size_t cols, uint32_t n, uint32_t m, uint8_t* row);
// The composite threshold (key, index) of the k-th element (1 <= k < cols) of a row in pruning order; scratch
// holds 3 * (cols + 16) 32-bit values.
void sparsity_select_avx512(const uint32_t* keys, size_t cols, uint64_t k, uint32_t* scratch, uint32_t* tk, uint32_t* tc);
// Mask bits of one row: key != 0 && (key > tk || (key == tk && c < tc)).
void sparsity_threshold_row_avx512(const uint32_t* keys, size_t cols, uint32_t tk, uint32_t tc, uint8_t* row);

}  // namespace ws
