// SPDX-License-Identifier: MIT
#include "weightsmith/nf4.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "weightsmith/float-bits.h"
#include "weightsmith/thread-pool.h"

namespace ws {

// bitsandbytes' get_4bit_type("nf4"), index -> value (as f32).
const float kNf4Table[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};

namespace {

struct Midpoints {
  float m[15];
  Midpoints() {
    for (int i = 0; i < 15; ++i) m[i] = (kNf4Table[i] + kNf4Table[i + 1]) / 2.0f;
  }
};

const Midpoints& midpoints() {
  static const Midpoints* m = new Midpoints();
  return *m;
}

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

inline float round_to(DType d, float v) {
  if (d == DType::kBF16) return f32_from_bits(bf16_to_f32(f32_to_bf16(f32_bits(v))));
  if (d == DType::kF16) return f32_from_bits(f16_to_f32(f32_to_f16(f32_bits(v))));
  return v;
}

// The code of s: the number of midpoints strictly below s (bucketize, right=False).
inline uint8_t bucket(float s, const float* m) {
  uint8_t q = 0;
  for (int i = 0; i < 15; ++i) q = static_cast<uint8_t>(q + (s > m[i] ? 1 : 0));
  return q;
}

}  // namespace

Status nf4_quantize(const void* xv, DType dtype, size_t n, size_t blocksize, uint8_t* packed, float* absmax,
                    bool check_finite, const std::atomic<bool>* cancel) {
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
    return Status(Code::kDtype, "nf4 quantization takes f32, f16 or bf16 input");
  if (blocksize < 2 || blocksize % 2 != 0) return Status(Code::kOutOfRange, "blocksize must be even");
  const auto* x = static_cast<const uint8_t*>(xv);
  const float* m = midpoints().m;
  const size_t nblocks = (n + blocksize - 1) / blocksize;
  std::vector<size_t> bad(nblocks, SIZE_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      nblocks,
      [&](size_t b) {
        const size_t lo = b * blocksize, hi = lo + blocksize < n ? lo + blocksize : n;
        float amax = 0.0f;
        for (size_t i = lo; i < hi; ++i) {
          const float v = load(dtype, x, i);
          if (!std::isfinite(v) && bad[b] == SIZE_MAX) bad[b] = i;
          const float a = std::fabs(v);
          amax = a > amax ? a : amax;
        }
        absmax[b] = amax;
        // Codes, two per byte (blocksize is even, so a block starts on a byte boundary).
        for (size_t i = lo; i < hi; i += 2) {
          uint8_t q[2] = {7, 7};
          for (size_t k = 0; k < 2 && i + k < hi; ++k) {
            if (amax == 0.0f) continue;
            float s = round_to(dtype, load(dtype, x, i + k) / amax);
            s = s < -1.0f ? -1.0f : (s > 1.0f ? 1.0f : s);
            q[k] = bucket(s, m);
          }
          packed[i / 2] = static_cast<uint8_t>((q[0] << 4) | q[1]);
        }
        return Status::ok();
      },
      cancel));
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

Status nf4_dequantize(const uint8_t* packed, const float* absmax, size_t n, size_t blocksize, float* out,
                      const std::atomic<bool>* cancel) {
  if (blocksize < 2 || blocksize % 2 != 0) return Status(Code::kOutOfRange, "blocksize must be even");
  const size_t nblocks = (n + blocksize - 1) / blocksize;
  return parallel_for(
      nblocks,
      [&](size_t b) {
        const size_t lo = b * blocksize, hi = lo + blocksize < n ? lo + blocksize : n;
        const float a = absmax[b];
        for (size_t i = lo; i < hi; ++i) {
          const uint8_t byte = packed[i / 2];
          const uint8_t q = (i % 2 == 0) ? static_cast<uint8_t>(byte >> 4) : static_cast<uint8_t>(byte & 0xF);
          out[i] = kNf4Table[q] * a;
        }
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
