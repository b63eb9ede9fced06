// SPDX-License-Identifier: MIT
// Internal: the per-segment int / FP8 quantizer kernels written once over a small vector-traits class, for
// scale-quant-avx2.cpp (8 lanes) and scale-quant-avx512.cpp (16 lanes). Include it only after the file's
// target pragma, inside namespace ws's anonymous namespace, once the traits class V is defined. V provides:
//   F, I (float / int32 vectors), M (lane mask), N (lanes);
//   load<D>(p) (N weights of dtype D as f32, exact; NaN quieted as the reference's widening does);
//   F-ops: div, add, min (a < b ? a : b), max (a > b ? a : b), abs, set1; unord(v) -> M;
//   round_bf16 / round_bf16_nonan (f32 -> bf16 -> f32, RNE; the second leaves NaN lanes undefined),
//   round_f16 (through F16C); cvt_rne (F -> I, ties to even, for values in the int range);
//   I-ops: set1i, addi, maxu (unsigned max), select(m, a, b) (m ? a : b), fp8<E4M3>(I bits) -> I codes;
//   hmin, hmax (no NaN lanes), hmaxu; store4_u8(dst, a, b, c, d): 4N codes (each < 256) as bytes.
// Every lane computes exactly what the scalar reference computes for that element (true IEEE division, the
// same roundings), so the result does not depend on the vector width. Tails are run through the same
// vector code on a zero-padded copy.

template <DType D>
constexpr size_t wsize() {
  return D == DType::kF32 ? 4 : 2;
}

// Copies the last n (< 4N) weights into a zero-padded buffer of 4N.
template <class V, DType D>
inline void pad_tail(const uint8_t* x, size_t n, uint8_t* buf) {
  std::memset(buf, 0, 4 * V::N * wsize<D>());
  std::memcpy(buf, x, n * wsize<D>());
}

template <class V, DType D>
inline typename V::F round_w(typename V::F v) {
  if constexpr (D == DType::kBF16) return V::round_bf16(v);
  else if constexpr (D == DType::kF16) return V::round_f16(v);
  else return v;
}

// The same where NaN lanes may come out as anything (the int path maps NaN to code 0 afterwards).
template <class V, DType D>
inline typename V::F round_w_nonan(typename V::F v) {
  if constexpr (D == DType::kBF16) return V::round_bf16_nonan(v);
  else if constexpr (D == DType::kF16) return V::round_f16(v);
  else return v;
}

template <class V, DType D>
void minmax_simd(const uint8_t* x, size_t n, float* mn_io, float* mx_io, uint32_t* abits_io) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr size_t kStep = 4 * V::N;
  const F zero = V::set1(0.0f);
  F mn[4] = {zero, zero, zero, zero}, mx[4] = {zero, zero, zero, zero};
  I ab = V::set1i(0);
  alignas(64) uint8_t buf[4 * V::N * 4];
  for (size_t i = 0; i < n; i += kStep) {
    const uint8_t* p = x + i * wsize<D>();
    if (n - i < kStep) {
      pad_tail<V, D>(p, n - i, buf);
      p = buf;
    }
    for (int k = 0; k < 4; ++k) {
      const F v = V::template load<D>(p + k * V::N * wsize<D>());
      mn[k] = V::min(v, mn[k]);  // NaN v keeps the accumulator
      mx[k] = V::max(v, mx[k]);
      ab = V::maxu(ab, V::abs_bits(v));
    }
  }
  const float lo = V::hmin(V::min(V::min(mn[0], mn[1]), V::min(mn[2], mn[3])));
  const float hi = V::hmax(V::max(V::max(mx[0], mx[1]), V::max(mx[2], mx[3])));
  const uint32_t b = V::hmaxu(ab);
  *mn_io = lo < *mn_io ? lo : *mn_io;
  *mx_io = hi > *mx_io ? hi : *mx_io;
  *abits_io = b > *abits_io ? b : *abits_io;
}

template <class V, DType D>
void absmax_simd(const uint8_t* x, size_t n, float* am_io, uint32_t* abits_io) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr size_t kStep = 4 * V::N;
  const F zero = V::set1(0.0f);
  F am[4] = {zero, zero, zero, zero};
  I ab = V::set1i(0);
  alignas(64) uint8_t buf[4 * V::N * 4];
  for (size_t i = 0; i < n; i += kStep) {
    const uint8_t* p = x + i * wsize<D>();
    if (n - i < kStep) {
      pad_tail<V, D>(p, n - i, buf);
      p = buf;
    }
    for (int k = 0; k < 4; ++k) {
      const F a = V::abs(V::template load<D>(p + k * V::N * wsize<D>()));
      am[k] = V::max(a, am[k]);
      ab = V::maxu(ab, V::abs_bits(a));
    }
  }
  const float m = V::hmax(V::max(V::max(am[0], am[1]), V::max(am[2], am[3])));
  const uint32_t b = V::hmaxu(ab);
  *am_io = m > *am_io ? m : *am_io;
  *abits_io = b > *abits_io ? b : *abits_io;
}

template <class V, DType D, bool ASYM>
void int_codes_simd_t(const uint8_t* x, size_t n, const IntSegParams& prm, uint8_t* codes) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr size_t kStep = 4 * V::N;
  const F sc = V::set1(prm.sc), zp = V::set1(prm.zp), lo = V::set1(prm.qmin), hi = V::set1(prm.qmax);
  const I off = V::set1i(prm.offset);
  alignas(64) uint8_t buf[4 * V::N * 4];
  alignas(64) uint8_t out[4 * V::N];
  for (size_t i = 0; i < n; i += kStep) {
    const uint8_t* p = x + i * wsize<D>();
    const bool tail = n - i < kStep;
    if (tail) {
      pad_tail<V, D>(p, n - i, buf);
      p = buf;
    }
    I q[4];
    for (int k = 0; k < 4; ++k) {
      F v = V::div(V::template load<D>(p + k * V::N * wsize<D>()), sc);
      const auto nan = V::unord(v);
      v = round_w_nonan<V, D>(v);
      if constexpr (ASYM) v = round_w_nonan<V, D>(V::add(v, zp));
      v = V::min(V::max(v, lo), hi);
      q[k] = V::select(nan, off, V::addi(V::cvt_rne(v), off));
    }
    if (!tail) {
      V::store4_u8(codes + i, q[0], q[1], q[2], q[3]);
    } else {
      V::store4_u8(out, q[0], q[1], q[2], q[3]);
      std::memcpy(codes + i, out, n - i);
    }
  }
}

template <class V, DType D>
void int_codes_simd(const uint8_t* x, size_t n, const IntSegParams& prm, uint8_t* codes) {
  if (prm.asym) int_codes_simd_t<V, D, true>(x, n, prm, codes);
  else int_codes_simd_t<V, D, false>(x, n, prm, codes);
}

template <class V, DType D, bool E4M3>
void fp8_codes_simd_t(const uint8_t* x, size_t n, float scale, uint8_t* codes) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr size_t kStep = 4 * V::N;
  constexpr float kMax = E4M3 ? 448.0f : 57344.0f;
  const F sc = V::set1(scale), lo = V::set1(-kMax), hi = V::set1(kMax);
  alignas(64) uint8_t buf[4 * V::N * 4];
  alignas(64) uint8_t out[4 * V::N];
  for (size_t i = 0; i < n; i += kStep) {
    const uint8_t* p = x + i * wsize<D>();
    const bool tail = n - i < kStep;
    if (tail) {
      pad_tail<V, D>(p, n - i, buf);
      p = buf;
    }
    I c[4];
    for (int k = 0; k < 4; ++k) {
      F v = round_w<V, D>(V::div(V::template load<D>(p + k * V::N * wsize<D>()), sc));
      v = V::min(hi, V::max(lo, v));  // NaN (second operand) passes both
      c[k] = V::template fp8<E4M3>(V::bits(v));
    }
    if (!tail) {
      V::store4_u8(codes + i, c[0], c[1], c[2], c[3]);
    } else {
      V::store4_u8(out, c[0], c[1], c[2], c[3]);
      std::memcpy(codes + i, out, n - i);
    }
  }
}

template <class V, DType D>
void fp8_codes_simd(const uint8_t* x, size_t n, float sc, bool e4m3, bool /*nan*/, uint8_t* codes) {
  if (e4m3) fp8_codes_simd_t<V, D, true>(x, n, sc, codes);
  else fp8_codes_simd_t<V, D, false>(x, n, sc, codes);
}
