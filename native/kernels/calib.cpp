// SPDX-License-Identifier: MIT
// Calibration statistics (calib.h): argument checks, SIMD dispatch and the blocked, threaded drivers.
//
// Gram / Hessian: the batch is first packed into 16-feature slivers (calib-kernels.h). The lower triangle of G
// is cut into square blocks of kBlock features; one chunk computes one block over all tokens of the batch,
// kKc tokens at a time, with 8 x (16..48) micro-kernels into a block accumulator (the column panel stays in L1
// while the row panel streams from L2), then writes the block and its transpose (G, or H * a + G * c). Chunk
// boundaries and the token order of every sum depend only on the sizes, so the result is bit-identical for any
// thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "calib-kernels.h"
#include "weight-math.h"
#include "weightsmith/calib.h"
#include "weightsmith/checked.h"
#include "weightsmith/convert.h"
#include "weightsmith/cpu.h"
#include "weightsmith/float-bits.h"
#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

constexpr size_t kBlock = 192;      // features per block side: a multiple of 16 and of 48
constexpr size_t kKc = 128;         // tokens per packed panel
constexpr size_t kSumsqCols = 2048;  // columns per chunk of the sums of squares
constexpr size_t kPackTokens = 64;  // tokens per chunk of the packing pass

// The portable micro-kernel: one row of the tile at a time (16 ns accumulators, which the baseline compiler keeps
// in vector registers), products rounded before the sums, so it gives the reference's bits.
template <int NS>
void micro_rows(const float* a, const float* b, size_t stride, size_t k, float* c, size_t ldc, bool first) {
  constexpr size_t kQ = NS * kCalibSliver;
  for (size_t r = 0; r < kCalibMr; ++r) {
    float acc[kQ];
    for (size_t q = 0; q < kQ; ++q) acc[q] = first ? 0.0f : c[r * ldc + q];
    for (size_t t = 0; t < k; ++t) {
      const float ar = a[t * kCalibSliver + r];
      for (int s = 0; s < NS; ++s) {
        const float* bt = b + s * stride + t * kCalibSliver;
        for (size_t q = 0; q < kCalibSliver; ++q) acc[s * kCalibSliver + q] += ar * bt[q];
      }
    }
    for (size_t q = 0; q < kQ; ++q) c[r * ldc + q] = acc[q];
  }
}

void micro_generic(const float* a, const float* b, size_t stride, int ns, size_t k, float* c, size_t ldc, bool first) {
  if (ns == 3) micro_rows<3>(a, b, stride, k, c, ldc, first);
  else if (ns == 2) micro_rows<2>(a, b, stride, k, c, ldc, first);
  else micro_rows<1>(a, b, stride, k, c, ldc, first);
}

void sumsq_row_generic(const float* x, size_t n, double* sums) {
  for (size_t j = 0; j < n; ++j) {
    const double v = x[j];
    sums[j] += v * v;
  }
}

CalibMicroFn best_micro() {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512)
    if (CalibMicroFn fn = calib_micro_avx512_fn()) return fn;
  if (simd_level() >= SimdLevel::kAvx2)
    if (CalibMicroFn fn = calib_micro_avx2_fn()) return fn;
#endif
  return micro_generic;
}

CalibSumsqRowFn best_sumsq_row() {
#if defined(__x86_64__)
  if (simd_level() >= SimdLevel::kAvx512)
    if (CalibSumsqRowFn fn = calib_sumsq_row_avx512_fn()) return fn;
#endif
  return sumsq_row_generic;
}

Status check_args(DType dtype, size_t tokens, size_t in) {
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16)
    return Status(Code::kDtype, std::string("calibration inputs must be f32, f16 or bf16, not ") + dtype_info(dtype).name);
  uint64_t n = 0, nn = 0;
  if (!checked_mul(tokens, in, &n) || !checked_mul(in, in, &nn) || n > SIZE_MAX / 8 || nn > SIZE_MAX / 8)
    return Status(Code::kOutOfRange, "the calibration batch is too large");
  return Status::ok();
}

// Packs the batch into slivers (calib-kernels.h): sliver s holds features [16 s, 16 s + 16) of every token,
// [tokens][16] (zero past `in`); slivers are tokens * 16 floats apart. f16/bf16 are widened on the way. One
// chunk per block of kPackTokens tokens, whose rows stay in cache while their slivers are written.
Status pack_batch(const void* xv, DType dtype, size_t tokens, size_t in, float* xp) {
  const auto* x = static_cast<const uint8_t*>(xv);
  const size_t es = dtype_size(dtype), nsl = chunk_count(in, kCalibSliver);
  return parallel_for(chunk_count(tokens, kPackTokens), [&](size_t chunk) {
    const size_t t0 = chunk * kPackTokens, t1 = std::min(tokens, t0 + kPackTokens);
    const float* rows = reinterpret_cast<const float*>(x + t0 * in * es);
    std::vector<float> wide;
    if (dtype != DType::kF32) {
      wide.resize((t1 - t0) * in);
      WS_RETURN_IF_ERROR(convert(x + t0 * in * es, dtype, wide.data(), DType::kF32, wide.size()));
      rows = wide.data();
    }
    for (size_t sl = 0; sl < nsl; ++sl) {
      const size_t f = sl * kCalibSliver, w = std::min(kCalibSliver, in - f);
      float* dst = xp + sl * tokens * kCalibSliver + t0 * kCalibSliver;
      for (size_t t = 0; t < t1 - t0; ++t, dst += kCalibSliver) {
        if (w == kCalibSliver) {
          std::memcpy(dst, rows + t * in + f, kCalibSliver * sizeof(float));
        } else {
          std::memcpy(dst, rows + t * in + f, w * sizeof(float));
          std::memset(dst + w, 0, (kCalibSliver - w) * sizeof(float));
        }
      }
    }
    return Status::ok();
  });
}

enum class Epilogue { kStore, kUpdate };

struct GramJob {
  const float* xp;  // the packed batch
  size_t tokens, in;
  float* out;
  Epilogue mode;
  bool fresh;  // kUpdate with n = 0: out = G * c
  float a, c;
  CalibMicroFn micro;
};

// dst[q] = src[q] (kStore), src[q] * c (the first batch) or dst[q] * a + src[q] * c, for q < n.
void write_run(const GramJob& g, float* dst, const float* src, size_t n) {
  if (g.mode == Epilogue::kStore) {
    for (size_t q = 0; q < n; ++q) dst[q] = src[q];  // (short runs: a loop beats memcpy's rep movs here)
  } else if (g.fresh) {
    for (size_t q = 0; q < n; ++q) dst[q] = src[q] * g.c;
  } else {
    for (size_t q = 0; q < n; ++q) dst[q] = dst[q] * g.a + src[q] * g.c;
  }
}

// Block row bi, block column bj <= bi of the lower triangle.
void block_of(size_t chunk, size_t* bi, size_t* bj) {
  size_t i = static_cast<size_t>((std::sqrt(8.0 * static_cast<double>(chunk) + 1.0) - 1.0) / 2.0);
  while (i * (i + 1) / 2 > chunk) --i;
  while ((i + 1) * (i + 2) / 2 <= chunk) ++i;
  *bi = i;
  *bj = chunk - i * (i + 1) / 2;
}

void gram_block(const GramJob& g, size_t bi, size_t bj, std::vector<float>& acc) {
  const size_t i0 = bi * kBlock, j0 = bj * kBlock;
  const size_t mi = std::min(kBlock, g.in - i0), mj = std::min(kBlock, g.in - j0);
  const size_t si = chunk_count(mi, kCalibSliver), sj = chunk_count(mj, kCalibSliver);
  const bool diag = bi == bj;
  const size_t stride = g.tokens * kCalibSliver;
  const float* ap = g.xp + (i0 / kCalibSliver) * stride;
  const float* bp = g.xp + (j0 / kCalibSliver) * stride;
  acc.resize(kBlock * kBlock);
  for (size_t t0 = 0; t0 < g.tokens; t0 += kKc) {
    const size_t k = std::min(kKc, g.tokens - t0);
    for (size_t jc = 0; jc < sj; jc += kCalibMaxNs) {
      const int ns = static_cast<int>(std::min<size_t>(kCalibMaxNs, sj - jc));
      const size_t c0 = jc * kCalibSliver;
      for (size_t r0 = 0; r0 < si * kCalibSliver; r0 += kCalibMr) {
        if (diag && c0 > r0 + kCalibMr - 1) continue;  // wholly above the diagonal
        const float* a = ap + (r0 / kCalibSliver) * stride + t0 * kCalibSliver + r0 % kCalibSliver;
        g.micro(a, bp + jc * stride + t0 * kCalibSliver, stride, ns, k, acc.data() + r0 * kBlock + c0, kBlock, t0 == 0);
      }
    }
  }
  // The block's lower-triangle entries row by row, then their mirror images in the upper triangle (each entry
  // of H updated from its own old value, as the reference does) through 16 x 16 transposed tiles, so that H is
  // only ever written in contiguous runs (rows of H are 4 * in bytes apart and would evict each other).
  for (size_t r = 0; r < mi; ++r) write_run(g, g.out + (i0 + r) * g.in + j0, acc.data() + r * kBlock, diag ? r + 1 : mj);
  float tile[kCalibSliver][kCalibSliver];
  for (size_t q0 = 0; q0 < mj; q0 += kCalibSliver) {
    const size_t qn = std::min(kCalibSliver, mj - q0);
    for (size_t r0 = diag ? q0 : 0; r0 < mi; r0 += kCalibSliver) {
      const size_t rn = std::min(kCalibSliver, mi - r0);
      for (size_t rr = 0; rr < rn; ++rr)
        for (size_t k = 0; k < qn; ++k) tile[k][rr] = acc[(r0 + rr) * kBlock + q0 + k];
      for (size_t k = 0; k < qn; ++k) {
        // Diagonal block: only entries below the diagonal (row r0 + rr > column q0 + k) have an image.
        const size_t first = diag && q0 + k + 1 > r0 ? q0 + k + 1 - r0 : 0;
        if (first < rn) write_run(g, g.out + (j0 + q0 + k) * g.in + i0 + r0 + first, tile[k] + first, rn - first);
      }
    }
  }
}

Status gram_pass(const void* xv, DType dtype, size_t tokens, size_t in, float* out, Epilogue mode, uint64_t seen,
                 const std::atomic<bool>* cancel) {
  std::vector<float> xp;
  try {
    xp.resize(chunk_count(in, kCalibSliver) * kCalibSliver * tokens);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "cannot allocate the packed calibration batch (" + std::to_string(tokens) + " x " + std::to_string(in) + ")");
  }
  WS_RETURN_IF_ERROR(pack_batch(xv, dtype, tokens, in, xp.data()));
  GramJob g{xp.data(), tokens, in, out, mode, seen == 0, 0.0f, 1.0f, best_micro()};
  if (mode == Epilogue::kUpdate) {
    const double total = static_cast<double>(seen) + static_cast<double>(tokens);
    g.a = static_cast<float>(static_cast<double>(seen) / total);
    g.c = static_cast<float>(2.0 / total);
  }
  const size_t nb = chunk_count(in, kBlock);
  WS_RETURN_IF_ERROR(parallel_for(
      nb * (nb + 1) / 2,
      [&](size_t chunk) {
        thread_local std::vector<float> acc;
        size_t bi = 0, bj = 0;
        block_of(chunk, &bi, &bj);
        gram_block(g, bi, bj, acc);
        return Status::ok();
      },
      cancel));
  return Status::ok();
}

// The first row-major index of a non-finite value, or SIZE_MAX.
size_t first_non_finite(const void* xv, DType dtype, size_t n) {
  const auto* x = static_cast<const uint8_t*>(xv);
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(load_weight_any(dtype, x, i))) return i;
  return SIZE_MAX;
}

Status non_finite_error(size_t index, size_t in) {
  return Status(Code::kNonFinite, "the calibration batch holds a non-finite value at index " + std::to_string(index) +
                                      " (token " + std::to_string(index / in) + ", feature " + std::to_string(index % in) + ")")
      .with("index", static_cast<uint64_t>(index));
}

}  // namespace

size_t calib_pass_tokens(size_t in) {
  const size_t per = chunk_count(in, kCalibSliver) * kCalibSliver;
  constexpr size_t kPassFloats = size_t{1} << 25;  // the packed copy of a pass: at most 128 MiB
  return std::max<size_t>(kKc, kPassFloats / std::max<size_t>(per, 1) / kKc * kKc);
}

Status calib_sumsq(const void* xv, DType dtype, size_t tokens, size_t in, double* sums, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(check_args(dtype, tokens, in));
  const auto* x = static_cast<const uint8_t*>(xv);
  const size_t es = dtype_size(dtype);
  const CalibSumsqRowFn row = best_sumsq_row();
  // Chunks are (token block, column range): rows are read in long contiguous runs, and every shape gives work
  // to several threads. Only the token blocks shape the arithmetic; the column ranges are free.
  const size_t tblocks = chunk_count(tokens, kCalibSumsqTokens), cblocks = chunk_count(in, kSumsqCols);
  std::vector<double> partial;
  try {
    partial.assign(tblocks * in, 0.0);
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "cannot allocate the partial sums of squares");
  }
  WS_RETURN_IF_ERROR(parallel_for(
      tblocks * cblocks,
      [&](size_t chunk) {
        const size_t tb = chunk / cblocks, c0 = (chunk % cblocks) * kSumsqCols, w = std::min(kSumsqCols, in - c0);
        const size_t t0 = tb * kCalibSumsqTokens, t1 = std::min(tokens, t0 + kCalibSumsqTokens);
        double* acc = partial.data() + tb * in + c0;
        float seg[kSumsqCols];
        for (size_t t = t0; t < t1; ++t) {
          const uint8_t* src = x + (t * in + c0) * es;
          if (dtype == DType::kF32) {
            std::memcpy(seg, src, w * sizeof(float));  // (x may be unaligned)
          } else {
            WS_RETURN_IF_ERROR(convert(src, dtype, seg, DType::kF32, w));
          }
          row(seg, w, acc);
        }
        return Status::ok();
      },
      cancel));
  for (size_t j = 0; j < in; ++j) sums[j] = 0.0;
  for (size_t tb = 0; tb < tblocks; ++tb)
    for (size_t j = 0; j < in; ++j) sums[j] += partial[tb * in + j];
  return Status::ok();
}

Status calib_gram(const void* x, DType dtype, size_t tokens, size_t in, float* g, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(check_args(dtype, tokens, in));
  if (in == 0) return Status::ok();
  if (tokens == 0) {
    std::fill(g, g + in * in, 0.0f);
    return Status::ok();
  }
  return gram_pass(x, dtype, tokens, in, g, Epilogue::kStore, 0, cancel);
}

Status calib_hessian_update(const void* xv, DType dtype, size_t tokens, size_t in, uint64_t seen, float* h) {
  WS_RETURN_IF_ERROR(check_args(dtype, tokens, in));
  if (in == 0) return Status::ok();
  // A batch larger than one pass is applied as consecutive sub-batches (the same update, as if added in parts).
  const auto* x = static_cast<const uint8_t*>(xv);
  const size_t step = calib_pass_tokens(in), es = dtype_size(dtype);
  for (size_t t0 = 0; t0 < tokens; t0 += step) {
    const size_t b = std::min(step, tokens - t0);
    WS_RETURN_IF_ERROR(gram_pass(x + t0 * in * es, dtype, b, in, h, Epilogue::kUpdate, seen + t0, nullptr));
  }
  return Status::ok();
}

Status calib_add(const void* x, DType dtype, size_t tokens, size_t in, uint64_t seen, double* sums, float* h,
                 bool check_finite, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(check_args(dtype, tokens, in));
  if (tokens == 0 || in == 0) return Status::ok();
  std::vector<double> batch(in);
  WS_RETURN_IF_ERROR(calib_sumsq(x, dtype, tokens, in, batch.data(), cancel));
  // A finite f32 squared is at most ~1.2e77 in f64, so a column sum is non-finite only if the column holds a
  // NaN or an infinity: the batch sums double as the finiteness check.
  if (check_finite)
    for (size_t j = 0; j < in; ++j)
      if (!std::isfinite(batch[j])) return non_finite_error(first_non_finite(x, dtype, tokens * in), in);
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) return Status(Code::kAborted, "The operation was aborted");
  if (h != nullptr) WS_RETURN_IF_ERROR(calib_hessian_update(x, dtype, tokens, in, seen, h));
  for (size_t j = 0; j < in; ++j) sums[j] += batch[j];
  return Status::ok();
}

Status calib_add_ref(const void* x, DType dtype, size_t tokens, size_t in, uint64_t seen, double* sums, float* h,
                     bool check_finite) {
  WS_RETURN_IF_ERROR(check_args(dtype, tokens, in));
  if (tokens == 0 || in == 0) return Status::ok();
  if (check_finite) {
    const size_t bad = first_non_finite(x, dtype, tokens * in);
    if (bad != SIZE_MAX) return non_finite_error(bad, in);
  }
  std::vector<double> batch(in);
  WS_RETURN_IF_ERROR(calib_sumsq_ref(x, dtype, tokens, in, batch.data()));
  if (h != nullptr) WS_RETURN_IF_ERROR(calib_hessian_update_ref(x, dtype, tokens, in, seen, h));
  for (size_t j = 0; j < in; ++j) sums[j] += batch[j];
  return Status::ok();
}

}  // namespace ws
