// SPDX-License-Identifier: MIT
// Scalar reference conversions: the specification every optimized variant is tested against. Each element is
// decoded to an exact intermediate (a double for floats, a 64-bit integer for integers) and encoded with one
// rounding step. Written for clarity, not speed.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "../convert-kernels.h"
#include "weightsmith/float-bits.h"

namespace ws {

namespace {

struct Value {
  enum Kind { kFloat, kSigned, kUnsigned } kind;
  double f;
  int64_t i;
  uint64_t u;
};

template <typename T>
T load(const void* p, size_t i) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t*>(p) + i * sizeof(T), sizeof(T));
  return v;
}
template <typename T>
void store(void* p, size_t i, T v) {
  std::memcpy(static_cast<uint8_t*>(p) + i * sizeof(T), &v, sizeof(T));
}

double quiet(double d) {
  if (std::isnan(d)) return f64_from_bits(f64_bits(d) | (uint64_t{1} << 51));
  return d;
}

Value decode(DType dt, const void* p, size_t i) {
  Value v{Value::kFloat, 0.0, 0, 0};
  switch (dt) {
    case DType::kF64: v.f = quiet(load<double>(p, i)); break;
    case DType::kF32: v.f = mf_decode(load<uint32_t>(p, i), kFmtF32); break;
    case DType::kF16: v.f = mf_decode(load<uint16_t>(p, i), kFmtF16); break;
    case DType::kBF16: v.f = mf_decode(load<uint16_t>(p, i), kFmtBF16); break;
    case DType::kF8E4M3: v.f = mf_decode(load<uint8_t>(p, i), kFmtE4M3); break;
    case DType::kF8E5M2: v.f = mf_decode(load<uint8_t>(p, i), kFmtE5M2); break;
    case DType::kI64: v.kind = Value::kSigned; v.i = load<int64_t>(p, i); break;
    case DType::kI32: v.kind = Value::kSigned; v.i = load<int32_t>(p, i); break;
    case DType::kI16: v.kind = Value::kSigned; v.i = load<int16_t>(p, i); break;
    case DType::kI8: v.kind = Value::kSigned; v.i = load<int8_t>(p, i); break;
    case DType::kU64: v.kind = Value::kUnsigned; v.u = load<uint64_t>(p, i); break;
    case DType::kU32: v.kind = Value::kUnsigned; v.u = load<uint32_t>(p, i); break;
    case DType::kU16: v.kind = Value::kUnsigned; v.u = load<uint16_t>(p, i); break;
    case DType::kU8: v.kind = Value::kUnsigned; v.u = load<uint8_t>(p, i); break;
    case DType::kBool: v.kind = Value::kUnsigned; v.u = load<uint8_t>(p, i) != 0; break;
    default: break;
  }
  return v;
}

// |integer| as a double rounded to odd: exact below 2^53, otherwise the sticky bit keeps the later
// round-to-nearest-even into a format of at most 51 mantissa bits correct (no double rounding).
double magnitude_round_to_odd(uint64_t u) {
  if (u < (uint64_t{1} << 53)) return static_cast<double>(u);
  int s = 0;
  while ((u >> s) >= (uint64_t{1} << 53)) ++s;
  const uint64_t sticky = (u & ((uint64_t{1} << s) - 1)) != 0 ? 1 : 0;
  return std::ldexp(static_cast<double>((u >> s) | sticky), s);
}

// An integer value as a double suitable for encoding into a narrow float (see above).
double int_for_narrow_float(const Value& v) {
  if (v.kind == Value::kUnsigned) return magnitude_round_to_odd(v.u);
  const uint64_t mag = v.i < 0 ? uint64_t{0} - static_cast<uint64_t>(v.i) : static_cast<uint64_t>(v.i);
  const double d = magnitude_round_to_odd(mag);
  return v.i < 0 ? -d : d;
}

double int_as_f64(const Value& v) {
  return v.kind == Value::kUnsigned ? static_cast<double>(v.u) : static_cast<double>(v.i);
}

// Float to integer: NaN -> 0, round half to even, saturate to [lo, hi].
template <typename T>
T float_to_int(double d) {
  if (std::isnan(d)) return 0;
  const double lo = static_cast<double>(std::numeric_limits<T>::min());
  // 2^(digits): the first value above the range, exactly representable.
  const double above = std::ldexp(1.0, std::numeric_limits<T>::digits);
  if (d <= lo) return std::numeric_limits<T>::min();
  if (d >= above) return std::numeric_limits<T>::max();
  const double fl = std::floor(d);
  const double frac = d - fl;
  double r = fl;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(fl, 2.0) != 0.0)) r = fl + 1.0;
  if (r >= above) return std::numeric_limits<T>::max();
  if (r <= lo) return std::numeric_limits<T>::min();
  return static_cast<T>(r);
}

template <typename T>
T int_to_int(const Value& v) {
  if (v.kind == Value::kUnsigned) {
    const uint64_t hi = static_cast<uint64_t>(std::numeric_limits<T>::max());
    return static_cast<T>(v.u > hi ? hi : v.u);
  }
  if (v.i < 0) {
    if (!std::numeric_limits<T>::is_signed) return 0;
    const int64_t lo = static_cast<int64_t>(std::numeric_limits<T>::min());
    return static_cast<T>(v.i < lo ? lo : v.i);
  }
  const uint64_t hi = static_cast<uint64_t>(std::numeric_limits<T>::max());
  return static_cast<T>(static_cast<uint64_t>(v.i) > hi ? hi : static_cast<uint64_t>(v.i));
}

template <typename T>
T to_int(const Value& v) {
  return v.kind == Value::kFloat ? float_to_int<T>(v.f) : int_to_int<T>(v);
}

void encode(DType dt, void* p, size_t i, const Value& v) {
  const bool is_float = v.kind == Value::kFloat;
  const double narrow = is_float ? v.f : int_for_narrow_float(v);
  switch (dt) {
    case DType::kF64: store<double>(p, i, is_float ? v.f : int_as_f64(v)); break;
    case DType::kF32: store<uint32_t>(p, i, mf_encode(narrow, kFmtF32)); break;
    case DType::kF16: store<uint16_t>(p, i, static_cast<uint16_t>(mf_encode(narrow, kFmtF16))); break;
    case DType::kBF16: store<uint16_t>(p, i, static_cast<uint16_t>(mf_encode(narrow, kFmtBF16))); break;
    case DType::kF8E4M3: store<uint8_t>(p, i, static_cast<uint8_t>(mf_encode(narrow, kFmtE4M3))); break;
    case DType::kF8E5M2: store<uint8_t>(p, i, static_cast<uint8_t>(mf_encode(narrow, kFmtE5M2))); break;
    case DType::kI64: store<int64_t>(p, i, to_int<int64_t>(v)); break;
    case DType::kI32: store<int32_t>(p, i, to_int<int32_t>(v)); break;
    case DType::kI16: store<int16_t>(p, i, to_int<int16_t>(v)); break;
    case DType::kI8: store<int8_t>(p, i, to_int<int8_t>(v)); break;
    case DType::kU64: store<uint64_t>(p, i, to_int<uint64_t>(v)); break;
    case DType::kU32: store<uint32_t>(p, i, to_int<uint32_t>(v)); break;
    case DType::kU16: store<uint16_t>(p, i, to_int<uint16_t>(v)); break;
    case DType::kU8: store<uint8_t>(p, i, to_int<uint8_t>(v)); break;
    case DType::kBool: {
      const bool nz = is_float ? v.f != 0.0 || std::isnan(v.f) : (v.kind == Value::kUnsigned ? v.u != 0 : v.i != 0);
      store<uint8_t>(p, i, nz ? 1 : 0);
      break;
    }
    default: break;
  }
}

template <DType S, DType D>
void convert_generic(const void* src, void* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) encode(D, dst, i, decode(S, src, i));
}

// f32 <-> f16 / bf16: the bit-level rules of float-bits.h are the spec for these pairs (they agree with the
// generic encoder; test/native checks that on a dense sample of all 2^32 inputs).
void f32_to_f16_ref(const void* src, void* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) store<uint16_t>(dst, i, f32_to_f16(load<uint32_t>(src, i)));
}
void f32_to_bf16_ref(const void* src, void* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) store<uint16_t>(dst, i, f32_to_bf16(load<uint32_t>(src, i)));
}
void f16_to_f32_ref(const void* src, void* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) store<uint32_t>(dst, i, f16_to_f32(load<uint16_t>(src, i)));
}
void bf16_to_f32_ref(const void* src, void* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) store<uint32_t>(dst, i, bf16_to_f32(load<uint16_t>(src, i)));
}

constexpr DType kArith[] = {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3,
                            DType::kF8E5M2, DType::kI64, DType::kI32, DType::kI16, DType::kI8,
                            DType::kU64, DType::kU32, DType::kU16, DType::kU8, DType::kBool};
constexpr size_t kNArith = sizeof(kArith) / sizeof(kArith[0]);

template <size_t I, size_t J>
void register_pair(ConvertTable* t) {
  constexpr DType s = kArith[I];
  constexpr DType d = kArith[J];
  t->fn[static_cast<size_t>(s)][static_cast<size_t>(d)] = &convert_generic<s, d>;
}

template <size_t I, size_t... J>
void register_row(ConvertTable* t, std::index_sequence<J...>) {
  (register_pair<I, J>(t), ...);
}

template <size_t... I>
void register_all(ConvertTable* t, std::index_sequence<I...>) {
  (register_row<I>(t, std::make_index_sequence<kNArith>{}), ...);
}

}  // namespace

void convert_register_ref(ConvertTable* t) {
  register_all(t, std::make_index_sequence<kNArith>{});
  auto at = [&](DType s, DType d) -> ConvertFn& { return t->fn[static_cast<size_t>(s)][static_cast<size_t>(d)]; };
  at(DType::kF32, DType::kF16) = f32_to_f16_ref;
  at(DType::kF32, DType::kBF16) = f32_to_bf16_ref;
  at(DType::kF16, DType::kF32) = f16_to_f32_ref;
  at(DType::kBF16, DType::kF32) = bf16_to_f32_ref;
}

}  // namespace ws
