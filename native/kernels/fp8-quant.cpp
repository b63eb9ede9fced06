// SPDX-License-Identifier: MIT
#include "weightsmith/fp8-quant.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "weightsmith/float-bits.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

inline float load(DType d, const uint8_t* p, size_t i) {
  if (d == DType::kF32) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return f32_from_bits(d == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h));
}

// An f32 result rounded to the weight dtype, as a torch op on an f16/bf16 tensor computes it.
inline float in_dtype(DType d, float v) {
  if (d == DType::kBF16) return f32_from_bits(bf16_to_f32(f32_to_bf16(f32_bits(v))));
  if (d == DType::kF16) return f32_from_bits(f16_to_f32(f32_to_f16(f32_bits(v))));
  return v;
}

inline float dtype_eps(DType d) {
  return d == DType::kBF16 ? 0.0078125f : d == DType::kF16 ? 0.0009765625f : 1.1920928955078125e-07f;
}

}  // namespace

Status fp8_quantize(const Fp8QuantSpec& spec, const void* xv, uint8_t* out, float* scales, const std::atomic<bool>* cancel) {
  const auto* x = static_cast<const uint8_t*>(xv);
  const DType wd = spec.weight_dtype;
  if (wd != DType::kF32 && wd != DType::kF16 && wd != DType::kBF16)
    return Status(Code::kDtype, "fp8 quantization takes f32, f16 or bf16 weights");
  if (spec.fp8 != DType::kF8E4M3 && spec.fp8 != DType::kF8E5M2) return Status(Code::kDtype, "fp8 format must be e4m3 or e5m2");
  const float fmax = spec.fp8 == DType::kF8E4M3 ? 448.0f : 57344.0f;
  const size_t br = spec.block_rows ? spec.block_rows : spec.rows;
  const size_t bc = spec.block_cols ? spec.block_cols : spec.cols;
  if (br == 0 || bc == 0) return Status::ok();
  const size_t gr = (spec.rows + br - 1) / br, gc = (spec.cols + bc - 1) / bc;
  // Pass 1: absmax per group, one chunk of group-rows at a time.
  std::vector<size_t> bad(gr, SIZE_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      gr,
      [&](size_t g) {
        std::vector<float> amax(gc, 0.0f);
        const size_t r1 = (g + 1) * br < spec.rows ? (g + 1) * br : spec.rows;
        for (size_t r = g * br; r < r1; ++r) {
          for (size_t c = 0; c < spec.cols; ++c) {
            const float a = std::fabs(load(wd, x, r * spec.cols + c));
            if (!std::isfinite(a) && bad[g] == SIZE_MAX) bad[g] = r * spec.cols + c;
            if (a > amax[c / bc] || std::isnan(a)) amax[c / bc] = a;
          }
        }
        for (size_t j = 0; j < gc; ++j) {
          float s = in_dtype(wd, amax[j] / fmax);
          if (s == 0.0f) s = dtype_eps(wd);
          scales[g * gc + j] = s;
        }
        return Status::ok();
      },
      cancel));
  if (spec.check_finite) {
    for (size_t i : bad) {
      if (i != SIZE_MAX) {
        Status st(Code::kNonFinite, "non-finite value at index " + std::to_string(i) + " (pass nonFinite: 'zero' or 'propagate' to allow)");
        st.with("index", static_cast<uint64_t>(i));
        return st;
      }
    }
  }
  // Pass 2: codes, in fixed chunks of rows.
  constexpr size_t kRowsPerChunk = 64;
  const DType f8 = spec.fp8;
  return parallel_for(
      chunk_count(spec.rows, kRowsPerChunk),
      [&](size_t ch) {
        const size_t r0 = ch * kRowsPerChunk;
        const size_t r1 = r0 + kRowsPerChunk < spec.rows ? r0 + kRowsPerChunk : spec.rows;
        for (size_t r = r0; r < r1; ++r) {
          const float* srow = scales + (r / br) * gc;
          for (size_t c = 0; c < spec.cols; ++c) {
            const size_t i = r * spec.cols + c;
            float q = in_dtype(wd, load(wd, x, i) / srow[c / bc]);
            q = q < -fmax ? -fmax : (q > fmax ? fmax : q);  // clamp (NaN passes through)
            out[i] = f8 == DType::kF8E4M3 ? f32_to_e4m3(f32_bits(q)) : f32_to_e5m2(f32_bits(q));
          }
        }
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
