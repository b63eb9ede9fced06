// SPDX-License-Identifier: MIT
// AVX2 (+FMA, F16C; no FMA is emitted: -ffp-contract=off) build of the lane-parallel q4_K, q5_K and q6_K quantizers in ggml-kquant-lanes.inc, byte-identical to
// kernels/ref/ggml-quant-ref.cpp. The target is switched on per function after the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../../../ggml-kernels.h"
#include "weightsmith/float-bits.h"
#include "weightsmith/ggml-quants.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace ws {
namespace kquant_avx2 {
namespace {

#define WS_KQ_LANES 8
#include "ggml-kquant-lanes.inc"
#undef WS_KQ_LANES

}  // namespace
}  // namespace kquant_avx2
}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace ws {

GgmlQuantFn ggml_kquant_avx2_fn(uint32_t type) {
  switch (type) {
    case 12: return kquant_avx2::k_blocks<12>;
    case 13: return kquant_avx2::k_blocks<13>;
    case 14: return kquant_avx2::q6_k_blocks;
    default: return nullptr;
  }
}

}  // namespace ws
