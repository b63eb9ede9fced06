// SPDX-License-Identifier: MIT
// The scalar reference of the integer RTN quantizer (compressed-tensors math, FORMATS.md b4): the
// specification the optimized kernels (kernels/int-quant.cpp and the x86 variants) must match byte for byte.
// Written for clarity: two passes (min/max, then codes) into an int8 code array, then the packing.
#include "weightsmith/int-quant.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../weight-math.h"
#include "weightsmith/float-bits.h"

namespace ws {

namespace {

// Runs fn(chunk) for every chunk in order on the calling thread (the chunked shape of the code is kept so the
// lowest non-finite index is found the same way as before).
template <typename Fn>
Status seq_for(size_t n, Fn&& fn) {
  for (size_t i = 0; i < n; ++i) WS_RETURN_IF_ERROR(fn(i));
  return Status::ok();
}

inline size_t chunk_count(size_t n, size_t chunk) { return n == 0 ? 0 : (n + chunk - 1) / chunk; }

// Round half to even (torch.round) without depending on the FPU mode; |v| is at most 2^7 here.
inline int round_even(float v) {
  const float fl = std::floor(v);
  const float d = v - fl;  // exact
  const int i = static_cast<int>(fl);
  return d > 0.5f || (d == 0.5f && (i & 1)) ? i + 1 : i;
}

template <DType D>
Status run(const IntQuantSpec& s, const uint8_t* x, int8_t* codes, float* scales, int32_t* zps) {
  const float qmin = -static_cast<float>(1 << (s.bits - 1));
  const float qmax = static_cast<float>((1 << (s.bits - 1)) - 1);
  const size_t rows = s.rows, cols = s.cols;
  const size_t g = s.whole_tensor || s.group == 0 ? cols : s.group;
  const size_t gpr = s.whole_tensor ? 1 : (cols + g - 1) / g;  // groups per row
  constexpr size_t kRowsPerChunk = 16;
  const size_t chunks = chunk_count(rows, kRowsPerChunk);

  // Pass 1: min and max per group (min/max are exact and order-free: the same for any thread count).
  const size_t n_groups = s.whole_tensor ? 1 : rows * gpr;
  std::vector<std::vector<float>> pmin(chunks), pmax(chunks);
  std::vector<size_t> bad(chunks, SIZE_MAX);
  WS_RETURN_IF_ERROR(seq_for(
      chunks,
      [&](size_t ch) {
        const size_t r0 = ch * kRowsPerChunk, r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
        const size_t local = s.whole_tensor ? 1 : (r1 - r0) * gpr;
        pmin[ch].assign(local, 0.0f);  // widened to include 0
        pmax[ch].assign(local, 0.0f);
        for (size_t r = r0; r < r1; ++r) {
          for (size_t c0 = 0, gi = 0; c0 < cols; c0 += g, ++gi) {
            const size_t n = cols - c0 < g ? cols - c0 : g;
            const size_t slot = s.whole_tensor ? 0 : (r - r0) * gpr + gi;
            float mn = pmin[ch][slot], mx = pmax[ch][slot];
            uint32_t nonfinite = 0;
            for (size_t k = 0; k < n; ++k) {
              const float v = load_weight<D>(x, r * cols + c0 + k);
              nonfinite |= static_cast<uint32_t>((f32_bits(v) & 0x7f800000u) == 0x7f800000u);
              mn = v < mn ? v : mn;
              mx = v > mx ? v : mx;
            }
            pmin[ch][slot] = mn;
            pmax[ch][slot] = mx;
            if (nonfinite && bad[ch] == SIZE_MAX) {
              for (size_t k = 0; k < n; ++k) {
                if (!std::isfinite(load_weight<D>(x, r * cols + c0 + k))) {
                  bad[ch] = r * cols + c0 + k;
                  break;
                }
              }
            }
          }
        }
        return Status::ok();
      }));
  if (s.check_finite) {
    for (size_t i : bad) {
      if (i != SIZE_MAX) {
        Status st(Code::kNonFinite, "non-finite value at index " + std::to_string(i) + " (pass nonFinite: 'zero' or 'propagate' to allow)");
        st.with("index", static_cast<uint64_t>(i));
        return st;
      }
    }
  }
  std::vector<float> gmin(n_groups, 0.0f), gmax(n_groups, 0.0f);
  for (size_t ch = 0; ch < chunks; ++ch) {
    const size_t first = s.whole_tensor ? 0 : ch * kRowsPerChunk * gpr;
    for (size_t k = 0; k < pmin[ch].size(); ++k) {
      gmin[first + k] = std::fmin(gmin[first + k], pmin[ch][k]);
      gmax[first + k] = std::fmax(gmax[first + k], pmax[ch][k]);
    }
  }
  for (size_t k = 0; k < n_groups; ++k) {
    float sc;
    int32_t zp = 0;
    if (s.symmetric) {
      const float amax = std::fmax(std::fabs(gmin[k]), std::fabs(gmax[k]));
      sc = round_to_weight<D>(amax / round_to_weight<D>((qmax - qmin) / 2));
      if (sc == 0.0f) sc = weight_eps<D>();
    } else {
      sc = round_to_weight<D>(round_to_weight<D>(gmax[k] - gmin[k]) / (qmax - qmin));
      if (sc == 0.0f) sc = weight_eps<D>();
      float z = round_to_weight<D>(qmin - round_to_weight<D>(gmin[k] / sc));
      z = z < qmin ? qmin : (z > qmax ? qmax : z);
      if (z != z) z = 0.0f;
      zp = round_even(z);
    }
    scales[k] = sc;
    zps[k] = zp;
  }

  // Pass 2: codes.
  return seq_for(
      chunks,
      [&](size_t ch) {
        const size_t r0 = ch * kRowsPerChunk, r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
        for (size_t r = r0; r < r1; ++r) {
          for (size_t c0 = 0, gi = 0; c0 < cols; c0 += g, ++gi) {
            const size_t n = cols - c0 < g ? cols - c0 : g;
            const size_t k = s.whole_tensor ? 0 : r * gpr + gi;
            const float sc = scales[k];
            const float zp = static_cast<float>(zps[k]);
            for (size_t j = 0; j < n; ++j) {
              float v = round_to_weight<D>(load_weight<D>(x, r * cols + c0 + j) / sc);
              if (!s.symmetric) v = round_to_weight<D>(v + zp);
              v = v < qmin ? qmin : (v > qmax ? qmax : v);
              if (v != v) v = 0.0f;  // NaN (nonFinite 'propagate'): no integer code, 0 as in float->int conversion
              codes[r * cols + c0 + j] = static_cast<int8_t>(round_even(v));
            }
          }
        }
        return Status::ok();
      });
}

}  // namespace

Status int_quantize_codes_ref(const IntQuantSpec& spec, const void* x, int8_t* codes, float* scales, int32_t* zero_points) {
  if (spec.bits < 1 || spec.bits > 8) return Status(Code::kOutOfRange, "bits must be 1 to 8");
  if (spec.rows == 0 || spec.cols == 0) return Status::ok();
  const auto* xb = static_cast<const uint8_t*>(x);
  switch (spec.weight_dtype) {
    case DType::kF32: return run<DType::kF32>(spec, xb, codes, scales, zero_points);
    case DType::kF16: return run<DType::kF16>(spec, xb, codes, scales, zero_points);
    case DType::kBF16: return run<DType::kBF16>(spec, xb, codes, scales, zero_points);
    default: return Status(Code::kDtype, "int quantization takes f32, f16 or bf16 weights");
  }
}

void int_pack_rows(const int8_t* codes, size_t rows, size_t cols, int bits, uint32_t* words) {
  const size_t wpr = (cols * bits + 31) / 32;
  const uint32_t offset = 1u << (bits - 1);
  const uint32_t mask = (bits == 32) ? 0xffffffffu : ((1u << bits) - 1u);
  for (size_t r = 0; r < rows; ++r) {
    uint32_t* w = words + r * wpr;
    std::memset(w, 0, wpr * 4);
    for (size_t c = 0; c < cols; ++c) {
      const uint32_t u = (static_cast<uint32_t>(codes[r * cols + c] + static_cast<int>(offset))) & mask;
      const size_t bit = c * bits;
      w[bit / 32] |= u << (bit % 32);
      if (bit % 32 + bits > 32) w[bit / 32 + 1] |= u >> (32 - bit % 32);
    }
  }
}

void int_unpack_rows(const uint32_t* words, size_t rows, size_t cols, int bits, int8_t* codes) {
  const size_t wpr = (cols * bits + 31) / 32;
  const int offset = 1 << (bits - 1);
  const uint32_t mask = (1u << bits) - 1u;
  for (size_t r = 0; r < rows; ++r) {
    const uint32_t* w = words + r * wpr;
    for (size_t c = 0; c < cols; ++c) {
      const size_t bit = c * bits;
      uint32_t u = w[bit / 32] >> (bit % 32);
      if (bit % 32 + bits > 32) u |= w[bit / 32 + 1] << (32 - bit % 32);
      codes[r * cols + c] = static_cast<int8_t>(static_cast<int>(u & mask) - offset);
    }
  }
}

// The reference in the stored layout: codes, then int_pack_rows for the weights, the scales narrowed to the
// weight dtype (exact), and the zero points transposed to columns of groups and packed along the rows.
Status int_quantize_ref(const IntQuantSpec& spec, const void* x, const IntQuantOut& out) {
  if (spec.bits < 1 || spec.bits > 8) return Status(Code::kOutOfRange, "bits must be 1 to 8");
  if (spec.weight_dtype != DType::kF32 && spec.weight_dtype != DType::kF16 && spec.weight_dtype != DType::kBF16)
    return Status(Code::kDtype, "int quantization takes f32, f16 or bf16 weights");
  if (spec.rows == 0 || spec.cols == 0) return Status::ok();
  const size_t rows = spec.rows, cols = spec.cols, ng = int_groups_per_row(spec), n_groups = int_group_count(spec);
  std::vector<int8_t> codes(rows * cols);
  std::vector<float> scales(n_groups);
  std::vector<int32_t> zps(n_groups);
  WS_RETURN_IF_ERROR(int_quantize_codes_ref(spec, x, codes.data(), scales.data(), zps.data()));
  int_pack_rows(codes.data(), rows, cols, spec.bits, out.packed);
  auto* sb = static_cast<uint8_t*>(out.scales);
  for (size_t k = 0; k < n_groups; ++k) {
    const uint32_t b = f32_bits(scales[k]);
    if (spec.weight_dtype == DType::kF32) {
      std::memcpy(sb + 4 * k, &b, 4);
    } else {
      const uint16_t h = spec.weight_dtype == DType::kBF16 ? f32_to_bf16(b) : f32_to_f16(b);
      std::memcpy(sb + 2 * k, &h, 2);
    }
  }
  if (!spec.symmetric && out.zero_points != nullptr) {
    if (spec.whole_tensor) {
      std::memcpy(out.zero_points, &zps[0], 4);
    } else {
      std::vector<int8_t> zt(ng * rows);
      for (size_t r = 0; r < rows; ++r)
        for (size_t g = 0; g < ng; ++g) zt[g * rows + r] = static_cast<int8_t>(zps[r * ng + g]);
      const size_t zw = int_words_per_row(rows, spec.bits);
      std::vector<uint32_t> zpacked(ng * zw);
      int_pack_rows(zt.data(), ng, rows, spec.bits, zpacked.data());
      for (size_t g = 0; g < ng; ++g)
        for (size_t w = 0; w < zw; ++w) out.zero_points[w * ng + g] = zpacked[g * zw + w];
    }
  }
  return Status::ok();
}

}  // namespace ws
