// SPDX-License-Identifier: MIT
// Scalar reference of bitsandbytes' blockwise 4-bit and 8-bit quantization (the spec; see bnb4.h for the
// rules), its code tables and the dynamic map of double quantization.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../bnb4-kernels.h"
#include "../weight-math.h"
#include "weightsmith/float-bits.h"

namespace ws {

namespace {

Bnb4Codebook make_codebook(Bnb4Type type) {
  Bnb4Codebook cb{};
  if (type == Bnb4Type::kNf4) {
    // get_4bit_type("nf4"): the values as f32 (dividing by the largest magnitude, 1, changes nothing).
    const float nf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                           -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                           0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
                           0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
    std::memcpy(cb.table, nf4, sizeof nf4);
  } else {
    // get_4bit_type("fp4"): bit-pattern order (sign, 2 exponent bits, 1 mantissa bit), divided by 12 in f32.
    const float fp4[16] = {0.0f, 0.0625f, 8.0f, 12.0f, 4.0f, 6.0f, 2.0f, 3.0f,
                           -0.0f, -0.0625f, -8.0f, -12.0f, -4.0f, -6.0f, -2.0f, -3.0f};
    for (int i = 0; i < 16; ++i) cb.table[i] = fp4[i] / 12.0f;
  }
  // torch.argsort of 16 values is a stable insertion sort: equal values (0 and -0) keep their index order.
  for (int i = 0; i < 16; ++i) cb.order[i] = i;
  std::stable_sort(cb.order, cb.order + 16, [&](int32_t a, int32_t b) { return cb.table[a] < cb.table[b]; });
  for (int i = 0; i < 15; ++i) cb.bounds[i] = (cb.table[cb.order[i]] + cb.table[cb.order[i + 1]]) / 2.0f;
  cb.bounds[15] = INFINITY;
  int q = 0;
  for (int i = 0; i < 15; ++i) q += !(cb.bounds[i] >= 0.0f);
  cb.zero_code = static_cast<uint8_t>(cb.order[q]);
  cb.cell_lut = true;
  cb.cell_lut2 = true;
  int inside[32] = {};
  for (int c = 0; c < 32; ++c) {
    const double lo = c / 16.0 - 1.0, hi = (c + 1) / 16.0 - 1.0;
    int below = 0;
    for (int i = 0; i < 15; ++i) {
      below += cb.bounds[i] < lo;
      inside[c] += cb.bounds[i] >= lo && cb.bounds[i] < hi;
    }
    cb.cell_base[c] = below;
  }
  for (int c = 0; c < 32; ++c) {
    const double edge = c / 16.0 - 1.0;
    if (inside[c] > 1) cb.cell_lut = false;
    if (inside[c] > 2) cb.cell_lut2 = false;
    for (int i = 0; i < 15; ++i) {
      const double d = std::fabs(cb.bounds[i] - edge);
      if (d < 1e-5) cb.cell_lut = false;
      if (d != 0.0 && d < 1e-5) cb.cell_lut2 = false;
      if (d == 0.0 && c > 0 && inside[c - 1] > 1) cb.cell_lut2 = false;
    }
  }
  return cb;
}

// torch.clamp(s, -1, 1): NaN stays NaN.
inline float clamp1(float s) { return s < -1.0f ? -1.0f : (s > 1.0f ? 1.0f : s); }

// torch.bucketize(s, bounds, right=False): the number of bounds b with !(b >= s) (NaN counts them all).
inline int bucket(const float* bounds, int nbounds, float s) {
  int q = 0;
  for (int i = 0; i < nbounds; ++i) q += !(bounds[i] >= s);
  return q;
}

// max |x| over a block as torch's max reduction computes it: NaN when any element is NaN.
template <typename Load>
float absmax_of(size_t lo, size_t hi, Load&& ld, size_t* first_bad) {
  float amax = 0.0f;
  bool nan = false;
  for (size_t i = lo; i < hi; ++i) {
    const float v = ld(i);
    if (!std::isfinite(v) && *first_bad == SIZE_MAX) *first_bad = i;
    const float a = std::fabs(v);
    if (a != a) nan = true;
    else if (a > amax) amax = a;
  }
  return nan ? NAN : amax;
}

inline float clamp_min_absmax(float amax) { return amax < kBnbMinAbsmax ? kBnbMinAbsmax : amax; }  // NaN stays

}  // namespace

const Bnb4Codebook& bnb4_codebook(Bnb4Type type) {
  static const Bnb4Codebook nf4 = make_codebook(Bnb4Type::kNf4);
  static const Bnb4Codebook fp4 = make_codebook(Bnb4Type::kFp4);
  return type == Bnb4Type::kNf4 ? nf4 : fp4;
}

const float* bnb4_table(Bnb4Type type) { return bnb4_codebook(type).table; }

size_t bnb4_block_ref(const Bnb4Codebook& cb, const uint8_t* x, DType dtype, size_t lo, size_t hi, bool full,
                      uint8_t* packed, float* absmax) {
  size_t first_bad = SIZE_MAX;
  const float amax = absmax_of(lo, hi, [&](size_t i) { return load_weight_any(dtype, x, i); }, &first_bad);
  const float clamped = clamp_min_absmax(amax);
  const float inv = 1.0f / clamped;
  *absmax = full ? amax : clamped;
  for (size_t i = lo; i < hi; i += 2) {
    uint8_t q[2] = {cb.zero_code, cb.zero_code};
    for (size_t k = 0; k < 2 && i + k < hi; ++k) {
      const float v = load_weight_any(dtype, x, i + k);
      const float s = clamp1(full ? v * inv : v / clamped);
      q[k] = static_cast<uint8_t>(cb.order[bucket(cb.bounds, 15, s)]);
    }
    packed[i / 2] = static_cast<uint8_t>((q[0] << 4) | q[1]);
  }
  return first_bad;
}

Status bnb4_quantize_ref(Bnb4Type type, const void* xv, DType dtype, size_t n, size_t blocksize, uint8_t* packed,
                         float* absmax, bool check_finite) {
  WS_RETURN_IF_ERROR(bnb4_check(blocksize));
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
    return Status(Code::kDtype, "4-bit quantization takes f32, f16 or bf16 input");
  const auto* x = static_cast<const uint8_t*>(xv);
  const Bnb4Codebook& cb = bnb4_codebook(type);
  size_t first_bad = SIZE_MAX;
  for (size_t b = 0, lo = 0; lo < n; ++b, lo += blocksize) {
    const size_t hi = n - lo < blocksize ? n : lo + blocksize;
    const size_t bad = bnb4_block_ref(cb, x, dtype, lo, hi, hi - lo == blocksize, packed, absmax + b);
    if (bad < first_bad) first_bad = bad;
  }
  if (check_finite && first_bad != SIZE_MAX) {
    Status st(Code::kNonFinite, "non-finite value at index " + std::to_string(first_bad) + " (pass nonFinite: 'zero' or 'propagate' to allow)");
    st.with("index", static_cast<uint64_t>(first_bad));
    return st;
  }
  return Status::ok();
}

Status bnb4_dequantize_ref(Bnb4Type type, const uint8_t* packed, const float* absmax, size_t n, size_t blocksize, float* out) {
  WS_RETURN_IF_ERROR(bnb4_check(blocksize));
  const float* table = bnb4_codebook(type).table;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t byte = packed[i / 2];
    const int q = i % 2 == 0 ? byte >> 4 : byte & 0xF;
    out[i] = table[q] * absmax[i / blocksize];
  }
  return Status::ok();
}

namespace {

std::vector<float> make_dynamic_map() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for i = 0..6, the midpoints of
  // torch.linspace(0.1, 1, 2^i + 1) (f32; the scalar formula: start + step * k below the halfway point,
  // end - step * (steps - 1 - k) from it) times +-10^(i-6) (an f32 product), then 0 and 1, sorted.
  std::vector<float> data;
  for (int i = 0; i < 7; ++i) {
    const int64_t steps = (int64_t{1} << i) + 1;
    const float start = static_cast<float>(0.1), end = 1.0f;
    const float step = (end - start) / static_cast<float>(steps - 1);
    const int64_t halfway = steps / 2;
    std::vector<float> b(static_cast<size_t>(steps));
    for (int64_t k = 0; k < steps; ++k)
      b[k] = k < halfway ? start + step * static_cast<float>(k) : end - step * static_cast<float>(steps - k - 1);
    const float scale = static_cast<float>(std::pow(10.0, static_cast<double>(i - 6)));
    std::vector<float> means(static_cast<size_t>(steps - 1));
    for (int64_t k = 0; k + 1 < steps; ++k) means[k] = (b[k] + b[k + 1]) / 2.0f;
    for (float m : means) data.push_back(scale * m);
    for (float m : means) data.push_back(-scale * m);
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  return data;
}

}  // namespace

const float* bnb_dynamic_map() {
  static const std::vector<float> map = make_dynamic_map();
  return map.data();
}

void blockwise8_quantize(const float* x, size_t n, size_t blocksize, const float* code, uint8_t* q, float* absmax) {
  float bounds[256];
  for (int i = 0; i < 255; ++i) bounds[i] = (code[i] + code[i + 1]) / 2.0f;
  bounds[255] = INFINITY;
  size_t ignored = SIZE_MAX;
  for (size_t b = 0, lo = 0; lo < n; ++b, lo += blocksize) {
    const size_t hi = n - lo < blocksize ? n : lo + blocksize;
    const bool full = hi - lo == blocksize;
    const float amax = absmax_of(lo, hi, [&](size_t i) { return x[i]; }, &ignored);
    const float clamped = clamp_min_absmax(amax);
    const float inv = 1.0f / clamped;
    absmax[b] = full ? amax : clamped;
    // The number of bounds with !(bound >= s), by a branch-free binary search (NaN gives 255), eight elements at
    // a time so that their searches overlap.
    for (size_t i0 = lo; i0 < hi; i0 += 8) {
      const size_t m = hi - i0 < 8 ? hi - i0 : 8;
      float s[8] = {};
      unsigned k[8] = {};
      for (size_t j = 0; j < m; ++j) s[j] = clamp1(full ? x[i0 + j] * inv : x[i0 + j] / clamped);
      for (unsigned step = 128; step >= 1; step >>= 1)
        for (size_t j = 0; j < 8; ++j) k[j] += !(bounds[k[j] + step - 1] >= s[j]) ? step : 0;
      for (size_t j = 0; j < m; ++j) q[i0 + j] = static_cast<uint8_t>(k[j]);
    }
  }
}

void blockwise8_dequantize(const uint8_t* q, const float* absmax, size_t n, size_t blocksize, const float* code, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = code[q[i]] * absmax[i / blocksize];
}

}  // namespace ws
