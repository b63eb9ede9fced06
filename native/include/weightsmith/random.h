// SPDX-License-Identifier: MIT
// Seeded standard-normal test matrices (the sketch of the randomized SVD).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightsmith/status.h"

namespace ws {

// out[0, n) = standard normals for `seed`, counter-based so any thread count gives the same values: output j of
// the SplitMix64 stream seeded with `seed` is mix(seed + (j + 1) * 0x9E3779B97F4A7C15); pair p (elements 2p and
// 2p + 1) takes outputs 2p and 2p + 1 as u1 = 1 - (o >> 11) * 2^-53 in (0, 1] and u2 = (o >> 11) * 2^-53 in
// [0, 1), and gives sqrt(-2 ln u1) * cos(2 pi u2) and sqrt(-2 ln u1) * sin(2 pi u2) (Box-Muller), rounded to f32.
Status gaussian_fill(uint64_t seed, float* out, size_t n, const std::atomic<bool>* cancel);

}  // namespace ws
