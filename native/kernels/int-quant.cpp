// SPDX-License-Identifier: MIT
// The optimized integer RTN quantizer and dequantizer (compressed-tensors math, FORMATS.md b4). One read of
// each group from memory: min/max (and the finite check), the scale and zero point, then the codes from cache
// straight into the packed words. With the AVX-512 set and groups of a multiple of 32 weights, int_row does
// this 16 groups at a time (their scales and zero points computed together in vector registers) and packs
// 4- and 8-bit codes from registers; otherwise codes go through a short L1 scratch and pack_codes. Rows are
// cut into fixed chunks of 32 (a chunk's zero points then fill whole words of the packed zero-point columns
// for any bit width), so the output does not depend on the thread count. The per-element kernels come from
// scale-quant-kernels.h (portable, AVX2 or AVX-512 by simd_level()); kernels/ref/int-quant-ref.cpp is the
// specification.
#include "weightsmith/int-quant.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "scale-quant-kernels.h"
#include "weight-math.h"
#include "weightsmith/float-bits.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

constexpr size_t kRowsPerChunk = 32;
constexpr size_t kSeg = 512;  // codes per scratch run

// Round half to even (torch.round); |v| <= 2^7 here.
inline int round_even(float v) {
  const float fl = std::floor(v);
  const float d = v - fl;
  const int i = static_cast<int>(fl);
  return d > 0.5f || (d == 0.5f && (i & 1)) ? i + 1 : i;
}

// The scale and zero point of one group from its min and max (both widened to include 0): the reference's
// arithmetic, every step rounded to the weight dtype.
template <DType D>
void group_params(bool symmetric, float qmin, float qmax, float mn, float mx, float* sc_out, int32_t* zp_out) {
  float sc;
  int32_t zp = 0;
  if (symmetric) {
    const float amax = std::fmax(std::fabs(mn), std::fabs(mx));
    sc = round_to_weight<D>(amax / round_to_weight<D>((qmax - qmin) / 2));
    if (sc == 0.0f) sc = weight_eps<D>();
  } else {
    sc = round_to_weight<D>(round_to_weight<D>(mx - mn) / (qmax - qmin));
    if (sc == 0.0f) sc = weight_eps<D>();
    float z = round_to_weight<D>(qmin - round_to_weight<D>(mn / sc));
    z = z < qmin ? qmin : (z > qmax ? qmax : z);
    if (z != z) z = 0.0f;
    zp = round_even(z);
  }
  *sc_out = sc;
  *zp_out = zp;
}

template <DType D>
inline void store_scale(void* scales, size_t k, float sc) {
  auto* p = static_cast<uint8_t*>(scales);
  const uint32_t b = f32_bits(sc);  // exact in the weight dtype
  if constexpr (D == DType::kF32) {
    std::memcpy(p + 4 * k, &b, 4);
  } else {
    const uint16_t h = D == DType::kBF16 ? f32_to_bf16(b) : f32_to_f16(b);
    std::memcpy(p + 2 * k, &h, 2);
  }
}

template <DType D>
inline float load_scale(const void* scales, size_t k) {
  return load_weight<D>(static_cast<const uint8_t*>(scales), k);
}

// The lowest index of a non-finite weight among x[0, n) (there is one).
template <DType D>
size_t first_bad(const uint8_t* x, size_t n) {
  for (size_t k = 0; k < n; ++k)
    if (!std::isfinite(load_weight<D>(x, k))) return k;
  return n;
}

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
Status run(const IntQuantSpec& s, const uint8_t* x, const IntQuantOut& out, const std::atomic<bool>* cancel) {
  const ScaleQuantKernels* K = scale_quant_best(D);
  constexpr size_t es = D == DType::kF32 ? 4 : 2;
  const float qmin = -static_cast<float>(1 << (s.bits - 1));
  const float qmax = static_cast<float>((1 << (s.bits - 1)) - 1);
  const int offset = 1 << (s.bits - 1);
  const size_t rows = s.rows, cols = s.cols;
  const size_t g = s.whole_tensor || s.group == 0 ? cols : s.group;
  const size_t ng = int_groups_per_row(s);
  const size_t wpr = int_words_per_row(cols, s.bits);
  const bool asym = !s.symmetric;
  const bool direct = K->int_pack != nullptr && (K->pack_bits >> s.bits) & 1u;
  const bool by_row = direct && K->int_row != nullptr && !s.whole_tensor && g % 32 == 0;
  IntSegParams rp{0.0f, 0.0f, qmin, qmax, offset, asym, false, round_to_weight<D>((qmax - qmin) / 2), qmax - qmin, weight_eps<D>()};
  const size_t chunks = chunk_count(rows, kRowsPerChunk);
  std::vector<size_t> bad(chunks, SIZE_MAX);

  // The whole tensor: one scale, so a first pass for min/max (exact and order-free).
  float t_sc = 0.0f;
  int32_t t_zp = 0;
  bool t_nan = false;
  if (s.whole_tensor) {
    std::vector<float> pmin(chunks, 0.0f), pmax(chunks, 0.0f);
    std::vector<uint32_t> pab(chunks, 0);
    WS_RETURN_IF_ERROR(parallel_for(
        chunks,
        [&](size_t ch) {
          const size_t r0 = ch * kRowsPerChunk, r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
          uint32_t& ab = pab[ch];
          K->minmax(x + r0 * cols * es, (r1 - r0) * cols, &pmin[ch], &pmax[ch], &ab);
          if (ab >= 0x7f800000u) bad[ch] = r0 * cols + first_bad<D>(x + r0 * cols * es, (r1 - r0) * cols);
          return Status::ok();
        },
        cancel));
    if (s.check_finite) WS_RETURN_IF_ERROR(first_error(bad));
    float mn = 0.0f, mx = 0.0f;
    for (size_t ch = 0; ch < chunks; ++ch) {
      mn = std::fmin(mn, pmin[ch]);
      mx = std::fmax(mx, pmax[ch]);
      t_nan = t_nan || pab[ch] >= 0x7f800000u;
    }
    group_params<D>(s.symmetric, qmin, qmax, mn, mx, &t_sc, &t_zp);
    store_scale<D>(out.scales, 0, t_sc);
    if (asym && out.zero_points != nullptr) std::memcpy(out.zero_points, &t_zp, 4);
  }

  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t ch) {
        const size_t r0 = ch * kRowsPerChunk, r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
        alignas(64) uint8_t codes[kSeg];
        std::vector<uint8_t> zc(asym && !s.whole_tensor ? (r1 - r0) * ng : 0);
        for (size_t r = r0; r < r1; ++r) {
          auto* row = reinterpret_cast<uint8_t*>(out.packed + r * wpr);
          const uint8_t* xr = x + r * cols * es;
          size_t c_start = 0, g_start = 0;
          if (by_row) {
            // Whole groups fused 16 at a time; a short last group goes the general way below.
            const size_t full = cols / g;
            uint8_t* srow = static_cast<uint8_t*>(out.scales) + r * ng * es;
            const size_t b = K->int_row(xr, full, g, rp, s.bits, row, srow, asym ? zc.data() + (r - r0) * ng : nullptr);
            if (b != SIZE_MAX && bad[ch] == SIZE_MAX) bad[ch] = r * cols + b;
            c_start = full * g;
            g_start = full;
            std::memset(row + c_start * s.bits / 8, 0, wpr * 4 - c_start * s.bits / 8);
          } else {
            std::memset(row, 0, wpr * 4);
          }
          for (size_t c0 = c_start, gi = g_start; c0 < cols; c0 += g, ++gi) {
            const size_t n = cols - c0 < g ? cols - c0 : g;
            IntSegParams p = rp;
            p.sc = t_sc;
            p.zp = static_cast<float>(t_zp);
            p.nan = t_nan;
            if (!s.whole_tensor) {
              float mn = 0.0f, mx = 0.0f;
              uint32_t ab = 0;
              K->minmax(xr + c0 * es, n, &mn, &mx, &ab);
              p.nan = ab >= 0x7f800000u;
              if (p.nan && bad[ch] == SIZE_MAX) bad[ch] = r * cols + c0 + first_bad<D>(xr + c0 * es, n);
              int32_t zp;
              group_params<D>(s.symmetric, qmin, qmax, mn, mx, &p.sc, &zp);
              p.zp = static_cast<float>(zp);
              store_scale<D>(out.scales, r * ng + gi, p.sc);
              if (asym) zc[(r - r0) * ng + gi] = static_cast<uint8_t>(zp + offset);
            }
            for (size_t j = 0; j < n; j += kSeg) {
              size_t m = n - j < kSeg ? n - j : kSeg;
              size_t c = c0 + j;
              if (direct && (c * s.bits) % 8 == 0 && m >= 32) {
                // Whole runs of 32 straight into the words, the rest through the scratch.
                const size_t m32 = m & ~size_t{31};
                K->int_pack(xr + c * es, m32, p, s.bits, row + c * s.bits / 8);
                c += m32;
                m -= m32;
                if (m == 0) continue;
              }
              K->int_codes(xr + c * es, m, p, codes);
              pack_codes(codes, m, s.bits, row, c * s.bits);
            }
          }
        }
        if (!zc.empty() && out.zero_points != nullptr) {
          // Column gi's stream: row r's code at bit r * bits; this chunk's rows fill words from r0 * bits / 32.
          const size_t m = r1 - r0;
          const size_t w0 = r0 * s.bits / 32, nw = int_words_per_row(m, s.bits);
          uint8_t col[kRowsPerChunk];
          uint32_t words[8];
          for (size_t gi = 0; gi < ng; ++gi) {
            for (size_t i = 0; i < m; ++i) col[i] = zc[i * ng + gi];
            std::memset(words, 0, sizeof(words));
            pack_codes(col, m, s.bits, reinterpret_cast<uint8_t*>(words), 0);
            for (size_t w = 0; w < nw; ++w) out.zero_points[(w0 + w) * ng + gi] = words[w];
          }
        }
        return Status::ok();
      },
      cancel));
  if (s.check_finite) WS_RETURN_IF_ERROR(first_error(bad));
  return Status::ok();
}

// Offset codes u of n elements of a packed row from bit `bitpos` (the row holds nbytes bytes), minus offset.
void unpack_codes(const uint8_t* row, size_t nbytes, size_t bitpos, size_t n, int bits, int32_t* q) {
  const int offset = 1 << (bits - 1);
  const uint32_t mask = (1u << bits) - 1u;
  size_t j = 0;
  if (bits == 8 && bitpos % 8 == 0) {
    const uint8_t* p = row + bitpos / 8;
    for (; j < n; ++j) q[j] = static_cast<int32_t>(p[j]) - offset;
    return;
  }
  if (bits == 4 && bitpos % 8 == 0) {
    const uint8_t* p = row + bitpos / 8;
    for (; j + 2 <= n; j += 2) {
      q[j] = static_cast<int32_t>(p[j / 2] & 15u) - offset;
      q[j + 1] = static_cast<int32_t>(p[j / 2] >> 4) - offset;
    }
  }
  for (; j < n; ++j) {
    const size_t bit = bitpos + j * bits;
    const size_t b = bit / 8;
    uint32_t v = row[b];
    if (b + 1 < nbytes) v |= static_cast<uint32_t>(row[b + 1]) << 8;
    q[j] = static_cast<int32_t>((v >> (bit % 8)) & mask) - offset;
  }
}

template <DType D>
Status dequant(const IntQuantSpec& s, const uint32_t* packed, const void* scales, const uint32_t* zps, void* out, DType od,
               const std::atomic<bool>* cancel) {
  const size_t rows = s.rows, cols = s.cols;
  const size_t g = s.whole_tensor || s.group == 0 ? cols : s.group;
  const size_t ng = int_groups_per_row(s);
  const size_t wpr = int_words_per_row(cols, s.bits);
  const bool asym = !s.symmetric && zps != nullptr;
  const bool out_f32 = od == DType::kF32;
  constexpr size_t es = D == DType::kF32 ? 4 : 2;
  const int offset = 1 << (s.bits - 1);
  const ScaleQuantKernels* K = scale_quant_best(D);
  const bool fast = K->int_dequant != nullptr && ((K->pack_bits >> s.bits) & 1u) && (out_f32 || K->dequant_wd);
  return parallel_for(
      chunk_count(rows, kRowsPerChunk),
      [&](size_t ch) {
        const size_t r0 = ch * kRowsPerChunk, r1 = r0 + kRowsPerChunk < rows ? r0 + kRowsPerChunk : rows;
        std::vector<int32_t> zp(asym && !s.whole_tensor ? (r1 - r0) * ng : 0);
        if (!zp.empty()) {
          const size_t zw = int_words_per_row(rows, s.bits);
          const size_t w0 = r0 * s.bits / 32, nw = int_words_per_row(r1 - r0, s.bits);
          uint32_t words[9];
          int32_t col[kRowsPerChunk];
          for (size_t gi = 0; gi < ng; ++gi) {
            for (size_t w = 0; w < nw && w0 + w < zw; ++w) words[w] = zps[(w0 + w) * ng + gi];
            unpack_codes(reinterpret_cast<const uint8_t*>(words), nw * 4, 0, r1 - r0, s.bits, col);
            for (size_t i = 0; i < r1 - r0; ++i) zp[i * ng + gi] = col[i];
          }
        }
        int32_t whole_zp = 0;
        if (asym && s.whole_tensor) std::memcpy(&whole_zp, zps, 4);
        alignas(64) int32_t q[kSeg];
        for (size_t r = r0; r < r1; ++r) {
          const auto* row = reinterpret_cast<const uint8_t*>(packed + r * wpr);
          for (size_t c0 = 0, gi = 0; c0 < cols; c0 += g, ++gi) {
            const size_t n = cols - c0 < g ? cols - c0 : g;
            const size_t k = s.whole_tensor ? 0 : r * ng + gi;
            const float sc = load_scale<D>(scales, k);
            const int32_t z = s.whole_tensor ? whole_zp : (asym ? zp[(r - r0) * ng + gi] : 0);
            size_t j = 0;
            if (fast && ((c0 * s.bits) % 8) == 0 && n >= 32) {
              const size_t m32 = n & ~size_t{31};
              K->int_dequant(row + c0 * s.bits / 8, m32, s.bits, offset + z, sc, out_f32,
                             static_cast<uint8_t*>(out) + (r * cols + c0) * (out_f32 ? 4 : es));
              j = m32;
            }
            for (; j < n; j += kSeg) {
              const size_t m = n - j < kSeg ? n - j : kSeg;
              unpack_codes(row, wpr * 4, (c0 + j) * s.bits, m, s.bits, q);
              const size_t o = r * cols + c0 + j;
              if (out_f32) {
                float* y = static_cast<float*>(out) + o;
                for (size_t i = 0; i < m; ++i) y[i] = round_to_weight<D>(static_cast<float>(q[i] - z) * sc);
              } else {
                uint8_t* y = static_cast<uint8_t*>(out) + o * es;
                for (size_t i = 0; i < m; ++i) {
                  const uint32_t b = f32_bits(static_cast<float>(q[i] - z) * sc);
                  if constexpr (D == DType::kF32) {
                    std::memcpy(y + 4 * i, &b, 4);
                  } else {
                    const uint16_t h = D == DType::kBF16 ? f32_to_bf16(b) : f32_to_f16(b);
                    std::memcpy(y + 2 * i, &h, 2);
                  }
                }
              }
            }
          }
        }
        return Status::ok();
      },
      cancel);
}

Status check_spec(const IntQuantSpec& spec) {
  if (spec.bits < 1 || spec.bits > 8) return Status(Code::kOutOfRange, "bits must be 1 to 8");
  if (spec.weight_dtype != DType::kF32 && spec.weight_dtype != DType::kF16 && spec.weight_dtype != DType::kBF16)
    return Status(Code::kDtype, "int quantization takes f32, f16 or bf16 weights");
  return Status::ok();
}

}  // namespace

Status int_quantize(const IntQuantSpec& spec, const void* x, const IntQuantOut& out, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(check_spec(spec));
  if (spec.rows == 0 || spec.cols == 0) return Status::ok();
  const auto* xb = static_cast<const uint8_t*>(x);
  switch (spec.weight_dtype) {
    case DType::kF32: return run<DType::kF32>(spec, xb, out, cancel);
    case DType::kF16: return run<DType::kF16>(spec, xb, out, cancel);
    default: return run<DType::kBF16>(spec, xb, out, cancel);
  }
}

Status int_dequantize(const IntQuantSpec& spec, const uint32_t* packed, const void* scales, const uint32_t* zero_points,
                      void* out, DType out_dtype, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(check_spec(spec));
  if (out_dtype != DType::kF32 && out_dtype != spec.weight_dtype)
    return Status(Code::kDtype, "int dequantization writes f32 or the weight dtype");
  if (spec.rows == 0 || spec.cols == 0) return Status::ok();
  switch (spec.weight_dtype) {
    case DType::kF32: return dequant<DType::kF32>(spec, packed, scales, zero_points, out, out_dtype, cancel);
    case DType::kF16: return dequant<DType::kF16>(spec, packed, scales, zero_points, out, out_dtype, cancel);
    default: return dequant<DType::kBF16>(spec, packed, scales, zero_points, out, out_dtype, cancel);
  }
}

}  // namespace ws
