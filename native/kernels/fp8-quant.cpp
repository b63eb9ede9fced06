// SPDX-License-Identifier: MIT
// The optimized FP8 quantizer and dequantizer (compressed-tensors math, FORMATS.md b4). Per group (a row, a
// block of rows x cols): absmax (and the finite check) while the group is in cache, the scale, then the codes
// straight into the output. Whole-row groups go in fixed runs of rows (about kElemsPerChunk weights); block
// groups in tiles of a band of rows x a run of blocks (about kTileBytes, handled by the AVX-512 fp8_tile when
// available). Chunks depend only on the shape, so the output does not depend on the thread count. The per-element kernels come from scale-quant-kernels.h
// (portable, AVX2 or AVX-512 by simd_level()); kernels/ref/fp8-quant-ref.cpp is the specification.
#include "weightsmith/fp8-quant.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "scale-quant-kernels.h"
#include "weight-math.h"
#include "weightsmith/convert.h"
#include "weightsmith/float-bits.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

constexpr size_t kElemsPerChunk = 1 << 16;
constexpr size_t kTileBytes = 1 << 20;  // a tile stays in L2 between its two passes
constexpr size_t kMaxTileGroups = 256;  // group columns in one tile

Status non_finite(size_t i) {
  Status st(Code::kNonFinite, "non-finite value at index " + std::to_string(i) + " (pass nonFinite: 'zero' or 'propagate' to allow)");
  st.with("index", static_cast<uint64_t>(i));
  return st;
}

Status first_error(const std::vector<size_t>& bad) {
  size_t lo = SIZE_MAX;
  for (size_t i : bad) lo = i < lo ? i : lo;
  return lo == SIZE_MAX ? Status::ok() : non_finite(lo);
}

template <DType D>
size_t first_bad(const uint8_t* x, size_t n) {
  for (size_t k = 0; k < n; ++k)
    if (!std::isfinite(load_weight<D>(x, k))) return k;
  return n;
}

// scale = absmax / fmax rounded to the weight dtype; 0 -> the dtype's epsilon.
template <DType D>
float group_scale(float amax, float fmax) {
  float sc = round_to_weight<D>(amax / fmax);
  if (sc == 0.0f) sc = weight_eps<D>();
  return sc;
}

template <DType D>
inline void store_scale(void* scales, size_t k, float sc) {
  auto* p = static_cast<uint8_t*>(scales);
  const uint32_t b = f32_bits(sc);
  if constexpr (D == DType::kF32) {
    std::memcpy(p + 4 * k, &b, 4);
  } else {
    const uint16_t h = D == DType::kBF16 ? f32_to_bf16(b) : f32_to_f16(b);
    std::memcpy(p + 2 * k, &h, 2);
  }
}

template <DType D>
Status run(const Fp8QuantSpec& spec, const uint8_t* x, uint8_t* out, void* scales, const std::atomic<bool>* cancel) {
  const ScaleQuantKernels* K = scale_quant_best(D);
  constexpr size_t es = D == DType::kF32 ? 4 : 2;
  const bool e4m3 = spec.fp8 == DType::kF8E4M3;
  const float fmax = e4m3 ? 448.0f : 57344.0f;
  const size_t rows = spec.rows, cols = spec.cols;
  const size_t br = spec.block_rows && spec.block_rows < rows ? spec.block_rows : rows;
  const size_t bc = spec.block_cols && spec.block_cols < cols ? spec.block_cols : cols;
  const size_t gr = (rows + br - 1) / br, gc = (cols + bc - 1) / bc;

  if (gr * gc == 1) {
    // One scale for the tensor: absmax over fixed row runs, then the codes.
    const size_t rpc = cols >= kElemsPerChunk ? 1 : kElemsPerChunk / cols;
    const size_t chunks = chunk_count(rows, rpc);
    std::vector<float> am(chunks, 0.0f);
    std::vector<uint32_t> pab(chunks, 0);
    std::vector<size_t> bad(chunks, SIZE_MAX);
    WS_RETURN_IF_ERROR(parallel_for(
        chunks,
        [&](size_t ch) {
          const size_t r0 = ch * rpc, r1 = r0 + rpc < rows ? r0 + rpc : rows;
          uint32_t& ab = pab[ch];
          K->absmax(x + r0 * cols * es, (r1 - r0) * cols, &am[ch], &ab);
          if (ab >= 0x7f800000u) bad[ch] = r0 * cols + first_bad<D>(x + r0 * cols * es, (r1 - r0) * cols);
          return Status::ok();
        },
        cancel));
    if (spec.check_finite) WS_RETURN_IF_ERROR(first_error(bad));
    float amax = 0.0f;
    bool nan = false;
    for (size_t ch = 0; ch < chunks; ++ch) {
      amax = std::fmax(amax, am[ch]);
      nan = nan || pab[ch] >= 0x7f800000u;
    }
    const float sc = group_scale<D>(amax, fmax);
    store_scale<D>(scales, 0, sc);
    return parallel_for(
        chunks,
        [&](size_t ch) {
          const size_t r0 = ch * rpc, r1 = r0 + rpc < rows ? r0 + rpc : rows;
          K->fp8_codes(x + r0 * cols * es, (r1 - r0) * cols, sc, e4m3, nan, out + r0 * cols);
          return Status::ok();
        },
        cancel);
  }

  // Groups spanning whole rows (channel): runs of whole groups, contiguous in memory. Otherwise tiles of one
  // band of group rows x a run of group columns (about kTileBytes: in L2 between the two passes), read
  // row by row so each row segment is one sequential stream.
  const bool whole_rows = gc == 1;
  const size_t gsize = br * bc;
  const size_t tile_elems = kTileBytes / es;
  size_t gpc = whole_rows ? (gsize >= kElemsPerChunk ? 1 : kElemsPerChunk / gsize) : (gsize >= tile_elems ? 1 : tile_elems / gsize);
  if (!whole_rows && gpc > kMaxTileGroups) gpc = kMaxTileGroups;
  const size_t runs = whole_rows ? 1 : chunk_count(gc, gpc);
  const size_t chunks = whole_rows ? chunk_count(gr, gpc) : gr * runs;
  std::vector<size_t> bad(chunks, SIZE_MAX);
  const bool tile_fast = !whole_rows && K->fp8_tile != nullptr && bc % 32 == 0;
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t ch) {
        if (whole_rows) {
          const size_t k0 = ch * gpc, k1 = k0 + gpc < gr ? k0 + gpc : gr;
          for (size_t k = k0; k < k1; ++k) {
            const size_t r0 = k * br, r1 = r0 + br < rows ? r0 + br : rows;
            const uint8_t* xg = x + r0 * cols * es;
            const size_t n = (r1 - r0) * cols;
            float am = 0.0f;
            uint32_t ab = 0;
            K->absmax(xg, n, &am, &ab);
            if (ab >= 0x7f800000u && bad[ch] == SIZE_MAX) bad[ch] = r0 * cols + first_bad<D>(xg, n);
            const float sc = group_scale<D>(am, fmax);
            store_scale<D>(scales, k, sc);
            K->fp8_codes(xg, n, sc, e4m3, ab >= 0x7f800000u, out + r0 * cols);
          }
          return Status::ok();
        }
        const size_t band = ch / runs;
        size_t kc0 = (ch % runs) * gpc;
        const size_t kc1 = kc0 + gpc < gc ? kc0 + gpc : gc;
        const size_t r0 = band * br, r1 = r0 + br < rows ? r0 + br : rows;
        if (tile_fast) {
          // Whole groups of the tile in one call; a short last group column goes the general way below.
          const size_t full = (kc1 == gc && cols % bc) ? kc1 - kc0 - 1 : kc1 - kc0;
          if (full) {
            const size_t b = K->fp8_tile(x + (r0 * cols + kc0 * bc) * es, r1 - r0, cols, full, bc, e4m3, weight_eps<D>(),
                                         static_cast<uint8_t*>(scales) + (band * gc + kc0) * es, out + r0 * cols + kc0 * bc);
            if (b != SIZE_MAX) {
              const size_t i = r0 * cols + kc0 * bc + b;
              bad[ch] = i < bad[ch] ? i : bad[ch];
            }
          }
          if (full == kc1 - kc0) return Status::ok();
          kc0 += full;
        }
        float am[kMaxTileGroups] = {};
        uint32_t ab[kMaxTileGroups] = {};
        for (size_t r = r0; r < r1; ++r) {
          for (size_t kc = kc0; kc < kc1; ++kc) {
            const size_t c0 = kc * bc, n = cols - c0 < bc ? cols - c0 : bc;
            K->absmax(x + (r * cols + c0) * es, n, &am[kc - kc0], &ab[kc - kc0]);
          }
        }
        float sc[kMaxTileGroups];
        for (size_t kc = kc0; kc < kc1; ++kc) {
          const size_t c0 = kc * bc, n = cols - c0 < bc ? cols - c0 : bc;
          if (ab[kc - kc0] >= 0x7f800000u) {
            for (size_t r = r0; r < r1; ++r) {
              const size_t f = first_bad<D>(x + (r * cols + c0) * es, n);
              if (f < n) {
                const size_t i = r * cols + c0 + f;
                bad[ch] = i < bad[ch] ? i : bad[ch];
                break;
              }
            }
          }
          sc[kc - kc0] = group_scale<D>(am[kc - kc0], fmax);
          store_scale<D>(scales, band * gc + kc, sc[kc - kc0]);
        }
        for (size_t r = r0; r < r1; ++r) {
          for (size_t kc = kc0; kc < kc1; ++kc) {
            const size_t c0 = kc * bc, n = cols - c0 < bc ? cols - c0 : bc;
            K->fp8_codes(x + (r * cols + c0) * es, n, sc[kc - kc0], e4m3, ab[kc - kc0] >= 0x7f800000u, out + r * cols + c0);
          }
        }
        return Status::ok();
      },
      cancel));
  if (spec.check_finite) WS_RETURN_IF_ERROR(first_error(bad));
  return Status::ok();
}

template <DType D>
Status dequant(const Fp8QuantSpec& spec, const uint8_t* codes, const void* scales, float* out, const std::atomic<bool>* cancel) {
  // The 256 code values, by the same conversion as a cast to f32.
  uint8_t all[256];
  float lut[256];
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  WS_RETURN_IF_ERROR(convert(all, spec.fp8, lut, DType::kF32, 256));
  const size_t rows = spec.rows, cols = spec.cols;
  const size_t br = spec.block_rows && spec.block_rows < rows ? spec.block_rows : rows;
  const size_t bc = spec.block_cols && spec.block_cols < cols ? spec.block_cols : cols;
  const size_t gc = (cols + bc - 1) / bc;
  const size_t rpc = cols >= kElemsPerChunk ? 1 : kElemsPerChunk / cols;
  const auto* sb = static_cast<const uint8_t*>(scales);
  const ScaleQuantKernels* K = scale_quant_best(D);
  return parallel_for(
      chunk_count(rows, rpc),
      [&](size_t ch) {
        const size_t r0 = ch * rpc, r1 = r0 + rpc < rows ? r0 + rpc : rows;
        for (size_t r = r0; r < r1; ++r) {
          const size_t srow = (r / br) * gc;
          for (size_t c0 = 0; c0 < cols; c0 += bc) {
            const size_t n = cols - c0 < bc ? cols - c0 : bc;
            const float sc = load_weight<D>(sb, srow + c0 / bc);
            const uint8_t* c = codes + r * cols + c0;
            float* y = out + r * cols + c0;
            size_t j = 0;
            if (K->fp8_dequant != nullptr) {
              j = n & ~size_t{15};
              K->fp8_dequant(c, j, sc, spec.fp8 == DType::kF8E4M3, lut, y);
            }
            for (; j < n; ++j) y[j] = lut[c[j]] * sc;
            // compressed-tensors computes code * scale in the scale dtype: the exact f32 product rounded once.
            if constexpr (D != DType::kF32)
              for (size_t k = 0; k < n; ++k) y[k] = round_to_weight<D>(y[k]);
          }
        }
        return Status::ok();
      },
      cancel);
}

}  // namespace

Status fp8_quantize(const Fp8QuantSpec& spec, const void* xv, uint8_t* out, void* scales, const std::atomic<bool>* cancel) {
  const DType wd = spec.weight_dtype;
  if (wd != DType::kF32 && wd != DType::kF16 && wd != DType::kBF16)
    return Status(Code::kDtype, "fp8 quantization takes f32, f16 or bf16 weights");
  if (spec.fp8 != DType::kF8E4M3 && spec.fp8 != DType::kF8E5M2) return Status(Code::kDtype, "fp8 format must be e4m3 or e5m2");
  if (spec.rows == 0 || spec.cols == 0) return Status::ok();
  const auto* x = static_cast<const uint8_t*>(xv);
  switch (wd) {
    case DType::kF32: return run<DType::kF32>(spec, x, out, scales, cancel);
    case DType::kF16: return run<DType::kF16>(spec, x, out, scales, cancel);
    default: return run<DType::kBF16>(spec, x, out, scales, cancel);
  }
}

Status fp8_dequantize(const Fp8QuantSpec& spec, const uint8_t* codes, const void* scales, float* out, const std::atomic<bool>* cancel) {
  const DType wd = spec.weight_dtype;
  if (wd != DType::kF32 && wd != DType::kF16 && wd != DType::kBF16) return Status(Code::kDtype, "fp8 scales are f32, f16 or bf16");
  if (spec.fp8 != DType::kF8E4M3 && spec.fp8 != DType::kF8E5M2) return Status(Code::kDtype, "fp8 format must be e4m3 or e5m2");
  if (spec.rows == 0 || spec.cols == 0) return Status::ok();
  switch (wd) {
    case DType::kF32: return dequant<DType::kF32>(spec, codes, scales, out, cancel);
    case DType::kF16: return dequant<DType::kF16>(spec, codes, scales, out, cancel);
    default: return dequant<DType::kBF16>(spec, codes, scales, out, cancel);
  }
}

}  // namespace ws
