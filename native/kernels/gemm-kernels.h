// SPDX-License-Identifier: MIT
// Internal: the AVX-512 sgemm kernels of cpu/arch/x86/gemm-avx512.cpp, used by gemm.cpp and (its full 8 x 48
// tile) by the factorizations in dgemm.cpp.
#pragma once

#include <cstddef>

namespace ws {

// c (row stride ldc) = (first ? 0 : c) + op(A) op(B) for an MR x 16 NV tile (MR 1..8, NV 1..3) from an A block
// packed [k][8] and a B sliver packed [k][48]; `mask` holds the last vector's valid lanes. fma chains in k order.
using GemmMicroFn = void (*)(const float* a, const float* b, size_t k, float* c, size_t ldc, bool first, unsigned mask);
GemmMicroFn gemm_micro_avx512(int mr, int nv);
// Packing of `rows` rows of op(A) into consecutive [kc][8] blocks and `cols` columns of op(B) into consecutive
// [kc][48] slivers, zero-padded.
void gemm_pack_a_avx512(const float* a, size_t lda, bool ta, size_t rows, size_t kc, float* dst);
void gemm_pack_b_avx512(const float* b, size_t ldb, bool tb, size_t cols, size_t kc, float* dst);

}  // namespace ws
