// SPDX-License-Identifier: MIT
// AVX-512 (F, BW, VL) build of the lane-parallel q4_K, q5_K and q6_K quantizers in ggml-kquant-lanes.inc, byte-identical to
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
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
// GCC 12's AVX-512 intrinsic headers trip a false -Wmaybe-uninitialized (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ws {
namespace kquant_avx512 {
namespace {

#define WS_KQ_LANES 16
#include "ggml-kquant-lanes.inc"
#undef WS_KQ_LANES

}  // namespace
}  // namespace kquant_avx512
}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

namespace ws {

GgmlQuantFn ggml_kquant_avx512_fn(uint32_t type) {
  switch (type) {
    case 12: return kquant_avx512::k_blocks<12>;
    case 13: return kquant_avx512::k_blocks<13>;
    case 14: return kquant_avx512::q6_k_blocks;
    default: return nullptr;
  }
}

}  // namespace ws
