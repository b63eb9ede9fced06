// SPDX-License-Identifier: MIT
// bitsandbytes 4-bit entry points: argument checks, SIMD dispatch, fixed-chunk parallel execution. The
// trailing partial block and blocks holding non-finite values always take the reference path.
#include <string>
#include <vector>

#include "bnb4-kernels.h"
#include "weightsmith/cpu.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

// Elements per parallel chunk (a whole number of blocks: every allowed block size divides it).
constexpr size_t kChunkElements = size_t{1} << 16;

size_t ref_blocks(const Bnb4Codebook& cb, const uint8_t* x, DType dtype, size_t first, size_t nblocks, size_t blocksize,
                  uint8_t* packed, float* absmax) {
  size_t bad = SIZE_MAX;
  for (size_t b = first; b < first + nblocks; ++b) {
    const size_t r = bnb4_block_ref(cb, x, dtype, b * blocksize, (b + 1) * blocksize, true, packed, absmax + b);
    if (r < bad) bad = r;
  }
  return bad;
}

void ref_dequant_blocks(const Bnb4Codebook& cb, const uint8_t* packed, const float* absmax, size_t first, size_t nblocks,
                        size_t blocksize, float* out) {
  for (size_t i = first * blocksize; i < (first + nblocks) * blocksize; ++i) {
    const uint8_t byte = packed[i / 2];
    out[i] = cb.table[i % 2 == 0 ? byte >> 4 : byte & 0xF] * absmax[i / blocksize];
  }
}

Bnb4QuantFn best_quant() {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512)
    if (Bnb4QuantFn fn = bnb4_quant_avx512_fn()) return fn;
  if (simd_level() >= SimdLevel::kAvx2)
    if (Bnb4QuantFn fn = bnb4_quant_avx2_fn()) return fn;
#endif
  return ref_blocks;
}

Bnb4DequantFn best_dequant() {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512)
    if (Bnb4DequantFn fn = bnb4_dequant_avx512_fn()) return fn;
  if (simd_level() >= SimdLevel::kAvx2)
    if (Bnb4DequantFn fn = bnb4_dequant_avx2_fn()) return fn;
#endif
  return ref_dequant_blocks;
}

}  // namespace

Status bnb4_check(size_t blocksize) {
  if (blocksize < 32 || blocksize > 4096 || (blocksize & (blocksize - 1)) != 0)
    return Status(Code::kOutOfRange, "the block size must be 32, 64, 128, 256, 512, 1024, 2048 or 4096, not " + std::to_string(blocksize));
  return Status::ok();
}

Status bnb4_quantize(Bnb4Type type, const void* xv, DType dtype, size_t n, size_t blocksize, uint8_t* packed, float* absmax,
                     bool check_finite, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(bnb4_check(blocksize));
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
    return Status(Code::kDtype, "4-bit quantization takes f32, f16 or bf16 input");
  const auto* x = static_cast<const uint8_t*>(xv);
  const Bnb4Codebook& cb = bnb4_codebook(type);
  const Bnb4QuantFn fn = best_quant();
  const size_t full = n / blocksize;
  const size_t per_chunk = kChunkElements / blocksize;
  const size_t chunks = chunk_count(full, per_chunk);
  std::vector<size_t> bad(chunks + 1, SIZE_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t c) {
        const size_t first = c * per_chunk;
        const size_t count = full - first < per_chunk ? full - first : per_chunk;
        bad[c] = fn(cb, x, dtype, first, count, blocksize, packed, absmax);
        return Status::ok();
      },
      cancel));
  if (full * blocksize < n) bad[chunks] = bnb4_block_ref(cb, x, dtype, full * blocksize, n, false, packed, absmax + full);
  if (check_finite) {
    for (size_t i : bad) {
      if (i != SIZE_MAX) {
        Status st(Code::kNonFinite, "non-finite value at index " + std::to_string(i) + " (pass nonFinite: 'zero' or 'propagate' to allow)");
        st.with("index", static_cast<uint64_t>(i));
        return st;
      }
    }
  }
  return Status::ok();
}

Status bnb4_dequantize(Bnb4Type type, const uint8_t* packed, const float* absmax, size_t n, size_t blocksize, float* out,
                       const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(bnb4_check(blocksize));
  const Bnb4Codebook& cb = bnb4_codebook(type);
  const Bnb4DequantFn fn = best_dequant();
  const size_t full = n / blocksize;
  const size_t per_chunk = kChunkElements / blocksize;
  WS_RETURN_IF_ERROR(parallel_for(
      chunk_count(full, per_chunk),
      [&](size_t c) {
        const size_t first = c * per_chunk;
        fn(cb, packed, absmax, first, full - first < per_chunk ? full - first : per_chunk, blocksize, out);
        return Status::ok();
      },
      cancel));
  for (size_t i = full * blocksize; i < n; ++i) {
    const uint8_t byte = packed[i / 2];
    out[i] = cb.table[i % 2 == 0 ? byte >> 4 : byte & 0xF] * absmax[full];
  }
  return Status::ok();
}

Status bnb4_double_quantize(const float* absmax, size_t n, const float* code, uint8_t* q, float* nested, float* offset,
                            const std::atomic<bool>* cancel) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += absmax[i];
  const float off = n ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
  *offset = off;
  constexpr size_t kBlock = 256, kPerChunk = 64 * kBlock;
  return parallel_for(
      chunk_count(n, kPerChunk),
      [&](size_t c) {
        const size_t lo = c * kPerChunk, len = n - lo < kPerChunk ? n - lo : kPerChunk;
        std::vector<float> centered(len);
        for (size_t i = 0; i < len; ++i) centered[i] = absmax[lo + i] - off;
        blockwise8_quantize(centered.data(), len, kBlock, code, q + lo, nested + lo / kBlock);
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
