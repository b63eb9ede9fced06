// SPDX-License-Identifier: MIT
// Scalar reference of the calibration statistics (the spec; see calib.h): column sums of squares in f64 and
// the Gram matrix in f32, summed in token order (the squares in blocks of kCalibSumsqTokens), and the Hessian update with two products and one sum.
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "weightsmith/calib.h"
#include "weightsmith/float-bits.h"

namespace ws {

namespace {

Status check(DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
    return Status(Code::kDtype, std::string("calibration inputs must be f32, f16 or bf16, not ") + dtype_info(dtype).name);
  return Status::ok();
}

float at(const uint8_t* x, DType dtype, size_t i) {
  if (dtype == DType::kF32) {
    float v;
    std::memcpy(&v, x + 4 * i, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, x + 2 * i, 2);
  return f32_from_bits(dtype == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h));
}

}  // namespace

Status calib_sumsq_ref(const void* xv, DType dtype, size_t tokens, size_t in, double* sums) {
  WS_RETURN_IF_ERROR(check(dtype));
  const auto* x = static_cast<const uint8_t*>(xv);
  std::vector<double> block(in);
  for (size_t j = 0; j < in; ++j) sums[j] = 0.0;
  for (size_t t0 = 0; t0 < tokens; t0 += kCalibSumsqTokens) {
    for (size_t j = 0; j < in; ++j) block[j] = 0.0;
    for (size_t t = t0; t < tokens && t < t0 + kCalibSumsqTokens; ++t)
      for (size_t j = 0; j < in; ++j) {
        const double v = at(x, dtype, t * in + j);
        block[j] += v * v;
      }
    for (size_t j = 0; j < in; ++j) sums[j] += block[j];
  }
  return Status::ok();
}

Status calib_gram_ref(const void* xv, DType dtype, size_t tokens, size_t in, float* g) {
  WS_RETURN_IF_ERROR(check(dtype));
  const auto* x = static_cast<const uint8_t*>(xv);
  std::vector<float> row(in);
  for (size_t i = 0; i < in * in; ++i) g[i] = 0.0f;
  for (size_t t = 0; t < tokens; ++t) {
    for (size_t j = 0; j < in; ++j) row[j] = at(x, dtype, t * in + j);
    for (size_t i = 0; i < in; ++i)
      for (size_t j = 0; j <= i; ++j) g[i * in + j] += row[i] * row[j];
  }
  for (size_t i = 0; i < in; ++i)
    for (size_t j = i + 1; j < in; ++j) g[i * in + j] = g[j * in + i];
  return Status::ok();
}

Status calib_hessian_update_ref(const void* x, DType dtype, size_t tokens, size_t in, uint64_t seen, float* h) {
  WS_RETURN_IF_ERROR(check(dtype));
  if (tokens == 0 || in == 0) return Status::ok();
  std::vector<float> g;
  try {
    g.resize(in * in);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "cannot allocate the Gram matrix (" + std::to_string(in) + " x " + std::to_string(in) + ")");
  }
  const size_t step = calib_pass_tokens(in), es = dtype_size(dtype);
  for (size_t t0 = 0; t0 < tokens; t0 += step) {
    const size_t b = tokens - t0 < step ? tokens - t0 : step;
    const uint64_t n = seen + t0;
    WS_RETURN_IF_ERROR(calib_gram_ref(static_cast<const uint8_t*>(x) + t0 * in * es, dtype, b, in, g.data()));
    const double total = static_cast<double>(n) + static_cast<double>(b);
    const float a = static_cast<float>(static_cast<double>(n) / total);
    const float c = static_cast<float>(2.0 / total);
    for (size_t i = 0; i < in * in; ++i) h[i] = n == 0 ? g[i] * c : h[i] * a + g[i] * c;
  }
  return Status::ok();
}

}  // namespace ws
