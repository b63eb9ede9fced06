// SPDX-License-Identifier: MIT
// The scalar reference of the FP8 quantizer (compressed-tensors math, FORMATS.md b4): the specification the
// optimized kernels (kernels/fp8-quant.cpp and the x86 variants) must match byte for byte. Two passes (absmax
// per group, then codes), single-threaded.
#include "weightsmith/fp8-quant.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../weight-math.h"
#include "weightsmith/float-bits.h"

namespace ws {

namespace {

// Row-segment kernels, specialized per weight dtype so the loops vectorize.
template <DType D>
void amax_segment(const uint8_t* x, size_t base, size_t len, float* am, size_t bc, size_t* bad) {
  for (size_t c0 = 0, g = 0; c0 < len; c0 += bc, ++g) {
    const size_t n = len - c0 < bc ? len - c0 : bc;
    float m = am[g];
    uint32_t nonfinite = 0;
    for (size_t k = 0; k < n; ++k) {
      const float a = std::fabs(load_weight<D>(x, base + c0 + k));
      nonfinite |= static_cast<uint32_t>(f32_bits(a) >= 0x7f800000u);
      m = a > m ? a : m;  // NaN never wins; branch-free so the loop vectorizes
    }
    am[g] = m;
    if (nonfinite && *bad == SIZE_MAX) {
      for (size_t k = 0; k < n; ++k) {
        if (!std::isfinite(load_weight<D>(x, base + c0 + k))) {
          *bad = base + c0 + k;
          break;
        }
      }
    }
  }
}

template <DType D>
void scale_segment(const uint8_t* x, size_t base, size_t len, float sc, float fmax, float* tmp) {
  for (size_t k = 0; k < len; ++k) {
    float q = round_to_weight<D>(load_weight<D>(x, base + k) / sc);
    q = q < -fmax ? -fmax : (q > fmax ? fmax : q);  // clamp (NaN passes through)
    tmp[k] = q;
  }
}

template <typename Fn>
Status seq_for(size_t n, Fn&& fn) {
  for (size_t i = 0; i < n; ++i) WS_RETURN_IF_ERROR(fn(i));
  return Status::ok();
}

inline size_t chunk_count(size_t n, size_t chunk) { return n == 0 ? 0 : (n + chunk - 1) / chunk; }

}  // namespace

Status fp8_quantize_ref(const Fp8QuantSpec& spec, const void* xv, uint8_t* out, void* scales_out) {
  const auto* x = static_cast<const uint8_t*>(xv);
  const DType wd = spec.weight_dtype;
  if (wd != DType::kF32 && wd != DType::kF16 && wd != DType::kBF16)
    return Status(Code::kDtype, "fp8 quantization takes f32, f16 or bf16 weights");
  if (spec.fp8 != DType::kF8E4M3 && spec.fp8 != DType::kF8E5M2) return Status(Code::kDtype, "fp8 format must be e4m3 or e5m2");
  const float fmax = spec.fp8 == DType::kF8E4M3 ? 448.0f : 57344.0f;
  const size_t rows = spec.rows, cols = spec.cols;
  const size_t br = spec.block_rows ? spec.block_rows : rows;
  const size_t bc = spec.block_cols ? spec.block_cols : cols;
  if (br == 0 || bc == 0 || rows == 0 || cols == 0) return Status::ok();
  const size_t gr = (rows + br - 1) / br, gc = (cols + bc - 1) / bc;
  constexpr size_t kRowsPerChunk = 64;
  const size_t chunks = chunk_count(rows, kRowsPerChunk);

  // Pass 1: absmax per group. Each fixed chunk of rows keeps its own maxima for the group rows it touches;
  // max is exact and order-free, so combining them gives the same result for any thread count.
  std::vector<std::vector<float>> part(chunks);
  std::vector<size_t> bad(chunks, SIZE_MAX);
  WS_RETURN_IF_ERROR(seq_for(
      chunks,
      [&](size_t ch) {
        const size_t r0 = ch * kRowsPerChunk, r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
        const size_t g0 = r0 / br, g1 = (r1 - 1) / br;
        std::vector<float>& amax = part[ch];
        amax.assign((g1 - g0 + 1) * gc, 0.0f);
        for (size_t r = r0; r < r1; ++r) {
          float* am = amax.data() + (r / br - g0) * gc;
          if (wd == DType::kF32) amax_segment<DType::kF32>(x, r * cols, cols, am, bc, &bad[ch]);
          else if (wd == DType::kBF16) amax_segment<DType::kBF16>(x, r * cols, cols, am, bc, &bad[ch]);
          else amax_segment<DType::kF16>(x, r * cols, cols, am, bc, &bad[ch]);
        }
        return Status::ok();
      }));
  if (spec.check_finite) {
    for (size_t i : bad) {
      if (i != SIZE_MAX) {
        Status st(Code::kNonFinite, "non-finite value at index " + std::to_string(i) + " (pass nonFinite: 'zero' or 'propagate' to allow)");
        st.with("index", static_cast<uint64_t>(i));
        return st;
      }
    }
  }
  std::vector<float> amax(gr * gc, 0.0f), scales(gr * gc);
  for (size_t ch = 0; ch < chunks; ++ch) {
    const size_t g0 = (ch * kRowsPerChunk) / br;
    for (size_t k = 0; k < part[ch].size(); ++k) amax[g0 * gc + k] = std::fmax(amax[g0 * gc + k], part[ch][k]);
  }
  for (size_t g = 0; g < gr * gc; ++g) {
    const float q = amax[g] / fmax;
    float sc = wd == DType::kBF16 ? round_to_weight<DType::kBF16>(q) : wd == DType::kF16 ? round_to_weight<DType::kF16>(q) : q;
    if (sc == 0.0f) sc = wd == DType::kBF16 ? weight_eps<DType::kBF16>() : wd == DType::kF16 ? weight_eps<DType::kF16>() : weight_eps<DType::kF32>();
    scales[g] = sc;
    const uint32_t b = f32_bits(sc);  // exact in the weight dtype
    if (wd == DType::kF32) {
      std::memcpy(static_cast<uint8_t*>(scales_out) + 4 * g, &b, 4);
    } else {
      const uint16_t h = wd == DType::kBF16 ? f32_to_bf16(b) : f32_to_f16(b);
      std::memcpy(static_cast<uint8_t*>(scales_out) + 2 * g, &h, 2);
    }
  }

  // Pass 2: q = clamp(x / scale) rounded in the weight dtype, a row segment at a time into an f32 buffer, then
  // the scalar f32 -> fp8 rule of float-bits.h, which rounds to nearest even like a cast.
  const DType f8 = spec.fp8;
  return seq_for(
      chunks,
      [&](size_t ch) {
        const size_t r0 = ch * kRowsPerChunk, r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
        std::vector<float> tmp(bc < cols ? bc : cols);
        for (size_t r = r0; r < r1; ++r) {
          const float* srow = scales.data() + (r / br) * gc;
          for (size_t c0 = 0; c0 < cols; c0 += bc) {
            const size_t len = cols - c0 < bc ? cols - c0 : bc;
            const float sc = srow[c0 / bc];
            const size_t base = r * cols + c0;
            if (wd == DType::kF32) scale_segment<DType::kF32>(x, base, len, sc, fmax, tmp.data());
            else if (wd == DType::kBF16) scale_segment<DType::kBF16>(x, base, len, sc, fmax, tmp.data());
            else scale_segment<DType::kF16>(x, base, len, sc, fmax, tmp.data());
            for (size_t k = 0; k < len; ++k)
              out[base + k] = f8 == DType::kF8E4M3 ? f32_to_e4m3(f32_bits(tmp[k])) : f32_to_e5m2(f32_bits(tmp[k]));
          }
        }
        return Status::ok();
      });
}

}  // namespace ws
