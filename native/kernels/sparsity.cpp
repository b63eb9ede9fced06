// SPDX-License-Identifier: MIT
// Pruning masks, optimized: per-row selection by the AVX-512 kernels (sparsity-avx512.cpp) or an 11-bit radix
// histogram of the keys, then a partial selection (nth_element) inside the boundary bucket only; per-tensor
// selection by a three-level radix search over fixed row chunks (per-chunk histograms summed in chunk order); N:M
// by ranking each group. Every chunk writes whole rows, and chunk boundaries depend only on the shape, so masks are
// identical for any thread count and equal to the reference (kernels/ref/sparsity-ref.cpp).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "sparsity-kernels.h"
#include "weightsmith/cpu.h"
#include "weightsmith/thread-pool.h"

namespace ws {

void sparsity_apply_avx512(const uint8_t* w, size_t elem_size, size_t rows, size_t cols, const uint8_t* bits, uint8_t* out);

namespace {

Status non_finite(size_t i) {
  Status st(Code::kNonFinite, "non-finite weight or score at index " + std::to_string(i));
  st.with("index", static_cast<uint64_t>(i));
  return st;
}

Status first_bad(const std::vector<size_t>& bad) {
  for (size_t i : bad)
    if (i != SIZE_MAX) return non_finite(i);
  return Status::ok();
}

// Rows per chunk: about 64K elements, at least one row.
size_t rows_per_chunk(size_t cols) { return cols >= 65536 ? 1 : 65536 / (cols ? cols : 1); }

// Keys of row r into keys[0, cols), branch-free per element; the first non-finite index, or SIZE_MAX.
template <DType D, ScoreKind K>
size_t row_keys_t(const MaskSpec& s, const uint8_t* w, size_t r, uint32_t* keys) {
  const size_t i0 = r * s.cols;
  uint32_t bad = 0;
  for (size_t c = 0; c < s.cols; ++c) {
    const float v = load_weight_any(D, w, i0 + c);
    const uint32_t vb = f32_bits(v);
    bad |= static_cast<uint32_t>((vb & 0x7f800000u) == 0x7f800000u);
    uint32_t bits;
    if constexpr (K == ScoreKind::kRandom) {
      bits = random_score_bits(s.seed, i0 + c);
    } else if constexpr (K == ScoreKind::kWanda) {
      bits = f32_bits(std::fabs(v) * s.norms[c]) & 0x7fffffffu;
      bad |= static_cast<uint32_t>(bits >= 0x7f800000u);
    } else {
      bits = vb & 0x7fffffffu;
    }
    keys[c] = bits + 1u;
  }
  if (s.base) {
    const uint8_t* row = s.base + r * mask_row_bytes(s.cols);
    for (size_t c = 0; c < s.cols; ++c)
      if (!((row[c / 8] >> (c % 8)) & 1u)) keys[c] = 0;
  }
  if (!bad) return SIZE_MAX;
  uint32_t k;
  for (size_t c = 0; c < s.cols; ++c)
    if (!score_key(s, w, r, c, &k)) return i0 + c;
  return SIZE_MAX;
}

template <DType D>
size_t row_keys_d(const MaskSpec& s, const uint8_t* w, size_t r, uint32_t* keys) {
  switch (s.score) {
    case ScoreKind::kWanda: return row_keys_t<D, ScoreKind::kWanda>(s, w, r, keys);
    case ScoreKind::kRandom: return row_keys_t<D, ScoreKind::kRandom>(s, w, r, keys);
    default: return row_keys_t<D, ScoreKind::kMagnitude>(s, w, r, keys);
  }
}

size_t row_keys(const MaskSpec& s, const uint8_t* w, size_t r, uint32_t* keys) {
  if (s.dtype == DType::kF32) return row_keys_d<DType::kF32>(s, w, r, keys);
  if (s.dtype == DType::kBF16) return row_keys_d<DType::kBF16>(s, w, r, keys);
  return row_keys_d<DType::kF16>(s, w, r, keys);
}

constexpr int kShift = 21;            // the first radix digit: key bits 31..21
constexpr size_t kBins = 2048;

// The composite threshold (key, index) of the k-th element (1 <= k < cols) of a row in pruning order: an 11-bit
// histogram of the keys, then a partial selection among the keys of the boundary bucket.
void select_threshold(const uint32_t* keys, size_t cols, uint64_t k, std::vector<uint32_t>& hist, std::vector<uint64_t>& cand,
                      uint32_t* tk, uint32_t* tc) {
  hist.assign(kBins, 0);
  for (size_t c = 0; c < cols; ++c) ++hist[keys[c] >> kShift];
  uint32_t bin = 0;
  uint64_t below = 0;
  while (below + hist[bin] < k) below += hist[bin++];
  const uint64_t need = k - below;
  cand.clear();
  for (size_t c = 0; c < cols; ++c)
    if ((keys[c] >> kShift) == bin) cand.push_back(uint64_t{keys[c]} << 32 | (~static_cast<uint32_t>(c)));
  std::nth_element(cand.begin(), cand.begin() + static_cast<ptrdiff_t>(need - 1), cand.end());
  *tk = static_cast<uint32_t>(cand[need - 1] >> 32);
  *tc = ~static_cast<uint32_t>(cand[need - 1]);
}

// The mask bits of one row: kept when the key is above the threshold's, or equal at a lower index (the composite
// order), never a base-pruned one (key 0). tk = tc = 0 keeps every element but the base-pruned ones.
void threshold_row(const uint32_t* keys, size_t cols, uint32_t tk, uint32_t tc, uint8_t* row) {
  for (size_t c0 = 0; c0 < cols; c0 += 8) {
    uint32_t byte = 0;
    const size_t n = cols - c0 < 8 ? cols - c0 : 8;
    for (size_t j = 0; j < n; ++j) {
      const uint32_t key = keys[c0 + j];
      const uint32_t c = static_cast<uint32_t>(c0 + j);
      byte |= static_cast<uint32_t>(key != 0 && (key > tk || (key == tk && c < tc))) << j;
    }
    row[c0 / 8] = static_cast<uint8_t>(byte);
  }
}

Status mask_per_row(const MaskSpec& s, const uint8_t* w, uint8_t* bits, const std::atomic<bool>* cancel) {
  const size_t rpc = rows_per_chunk(s.cols), chunks = chunk_count(s.rows, rpc), rb = mask_row_bytes(s.cols);
  const bool simd = simd_level() >= SimdLevel::kAvx512;
  std::vector<size_t> bad(chunks, SIZE_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t ch) {
        std::vector<uint32_t> keys(s.cols + 16), hist, scratch;
        std::vector<uint64_t> cand;
        if (simd) scratch.resize(3 * (s.cols + 16) + 2);
        for (size_t r = ch * rpc; r < s.rows && r < (ch + 1) * rpc; ++r) {
          bool vec = false;
#if defined(__x86_64__)
          vec = simd && sparsity_row_keys_avx512(s, w, r, keys.data());
#endif
          if (!vec) {
            const size_t b = row_keys(s, w, r, keys.data());
            if (b != SIZE_MAX) {
              bad[ch] = b;
              return Status::ok();
            }
          }
          uint8_t* row = bits + r * rb;
          if (s.prune >= s.cols) {
            std::memset(row, 0, rb);
            continue;
          }
          uint32_t tk = 0, tc = 0;
#if defined(__x86_64__)
          if (vec) {
            if (s.prune > 0) sparsity_select_avx512(keys.data(), s.cols, s.prune, scratch.data(), &tk, &tc);
            sparsity_threshold_row_avx512(keys.data(), s.cols, tk, tc, row);
            continue;
          }
#endif
          if (s.prune > 0) select_threshold(keys.data(), s.cols, s.prune, hist, cand, &tk, &tc);
          threshold_row(keys.data(), s.cols, tk, tc, row);
        }
        return Status::ok();
      },
      cancel));
  return first_bad(bad);
}

// Keeps the n best of every group of m in a row: an element is kept when fewer than n members of its group rank
// ahead of it (a higher key, or an equal key at a lower index). kM: the group size when fixed at compile time.
template <uint32_t kM>
void nm_row(const uint32_t* keys, size_t cols, uint32_t n, uint8_t* row, uint32_t m_runtime = 0) {
  const uint32_t m = kM ? kM : m_runtime;
  for (size_t g = 0; g < cols; g += m) {
    const uint32_t* k = keys + g;
    for (uint32_t i = 0; i < m; ++i) {
      uint32_t ahead = 0;
      for (uint32_t j = 0; j < m; ++j) ahead += static_cast<uint32_t>((k[j] > k[i]) | ((k[j] == k[i]) & (j < i)));
      if (ahead < n && k[i] != 0) row[(g + i) / 8] |= static_cast<uint8_t>(1u << ((g + i) % 8));
    }
  }
}

Status mask_nm(const MaskSpec& s, const uint8_t* w, uint8_t* bits, const std::atomic<bool>* cancel) {
  const size_t rpc = rows_per_chunk(s.cols), chunks = chunk_count(s.rows, rpc), rb = mask_row_bytes(s.cols);
  const bool simd = simd_level() >= SimdLevel::kAvx512;
  std::vector<size_t> bad(chunks, SIZE_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t ch) {
        std::vector<uint32_t> keys(s.cols + 16);
        for (size_t r = ch * rpc; r < s.rows && r < (ch + 1) * rpc; ++r) {
          uint8_t* row = bits + r * rb;
          std::memset(row, 0, rb);
#if defined(__x86_64__)
          if (simd && sparsity_row_keys_avx512(s, w, r, keys.data()) && sparsity_nm_row_avx512(keys.data(), s.cols, s.n, s.m, row)) continue;
#endif
          const size_t b = row_keys(s, w, r, keys.data());
          if (b != SIZE_MAX) {
            bad[ch] = b;
            return Status::ok();
          }
          if (s.m == 4) nm_row<4>(keys.data(), s.cols, s.n, row);
          else if (s.m == 8) nm_row<8>(keys.data(), s.cols, s.n, row);
          else nm_row<0>(keys.data(), s.cols, s.n, row, s.m);
        }
        return Status::ok();
      },
      cancel));
  return first_bad(bad);
}

// The keys of row r into keys (cols + 16 values): the AVX-512 kernel where it applies, else the scalar one.
// Returns the first non-finite index, or SIZE_MAX.
size_t keys_of_row(const MaskSpec& s, const uint8_t* w, size_t r, uint32_t* keys, bool simd) {
#if defined(__x86_64__)
  if (simd && sparsity_row_keys_avx512(s, w, r, keys)) return SIZE_MAX;
#else
  (void)simd;
#endif
  return row_keys(s, w, r, keys);
}

// Per tensor: the k-th smallest key by three radix digits (bits 31..21, 20..10, 9..0), histograms per row chunk
// (keys recomputed a row at a time in every pass, so memory stays bounded).
Status mask_per_tensor(const MaskSpec& s, const uint8_t* w, uint8_t* bits, const std::atomic<bool>* cancel) {
  const size_t rpc = rows_per_chunk(s.cols), chunks = chunk_count(s.rows, rpc), rb = mask_row_bytes(s.cols);
  const uint64_t total = static_cast<uint64_t>(s.rows) * s.cols;
  const uint64_t k = s.prune;
  const bool simd = simd_level() >= SimdLevel::kAvx512;
  std::vector<size_t> bad(chunks, SIZE_MAX);
  uint32_t prefix = 0;  // the key bits found so far (above `shift`)
  uint64_t below = 0;   // elements whose key is below the current prefix range
  const int shifts[3] = {21, 10, 0};
  const int widths[3] = {11, 11, 10};
  if (k > 0 && k < total) {
    for (int level = 0; level < 3; ++level) {
      const int sh = shifts[level];
      const size_t nb = size_t{1} << widths[level];
      const uint32_t hi_mask = level == 0 ? 0u : ~((uint32_t{1} << (shifts[level - 1])) - 1u);
      std::vector<std::vector<uint64_t>> hists(chunks);
      WS_RETURN_IF_ERROR(parallel_for(
          chunks,
          [&](size_t ch) {
            auto& h = hists[ch];
            h.assign(nb, 0);
            std::vector<uint32_t> keys(s.cols + 16);
            for (size_t r = ch * rpc; r < s.rows && r < (ch + 1) * rpc; ++r) {
              const size_t b = keys_of_row(s, w, r, keys.data(), simd);
              if (b != SIZE_MAX) {
                bad[ch] = b;
                return Status::ok();
              }
              if (level == 0) {
                for (size_t c = 0; c < s.cols; ++c) ++h[keys[c] >> sh];
              } else {
                for (size_t c = 0; c < s.cols; ++c)
                  if ((keys[c] & hi_mask) == prefix) ++h[(keys[c] >> sh) & (nb - 1)];
              }
            }
            return Status::ok();
          },
          cancel));
      WS_RETURN_IF_ERROR(first_bad(bad));
      size_t digit = 0;
      for (;; ++digit) {
        uint64_t count = 0;
        for (size_t ch = 0; ch < chunks; ++ch) count += hists[ch][digit];
        if (below + count >= k) break;
        below += count;
      }
      prefix |= static_cast<uint32_t>(digit) << sh;
    }
  }
  // prefix is now the key T of the k-th element; `below` elements have a smaller key, and e = k - below of the
  // elements equal to T are pruned: the ones of highest index.
  const uint32_t t = prefix;
  const uint64_t e = k > 0 && k < total ? k - below : 0;
  std::vector<uint64_t> equal(chunks, 0);
  if (e > 0) {
    WS_RETURN_IF_ERROR(parallel_for(
        chunks,
        [&](size_t ch) {
          std::vector<uint32_t> keys(s.cols + 16);
          for (size_t r = ch * rpc; r < s.rows && r < (ch + 1) * rpc; ++r) {
            keys_of_row(s, w, r, keys.data(), simd);
            for (size_t c = 0; c < s.cols; ++c) equal[ch] += keys[c] == t;
          }
          return Status::ok();
        },
        cancel));
  }
  std::vector<uint64_t> after(chunks, 0);  // equal elements in later chunks
  for (size_t ch = chunks; ch-- > 1;) after[ch - 1] = after[ch] + equal[ch];
  std::vector<size_t> bad2(chunks, SIZE_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t ch) {
        const size_t r0 = ch * rpc, r1 = std::min(s.rows, (ch + 1) * rpc);
        std::memset(bits + r0 * rb, 0, (r1 - r0) * rb);
        std::vector<uint32_t> keys(s.cols + 16);
        uint64_t seen = after[ch];  // equal elements after the current one
        for (size_t r = r1; r-- > r0;) {
          const size_t b = keys_of_row(s, w, r, keys.data(), simd);
          if (b != SIZE_MAX) {
            bad2[ch] = b;
            return Status::ok();
          }
          for (size_t c = s.cols; c-- > 0;) {
            const uint32_t key = keys[c];
            bool keep;
            if (k == 0) keep = key != 0;
            else if (k >= total) keep = false;
            else if (key != t) keep = key > t;
            else keep = seen++ >= e && key != 0;  // base-pruned elements stay pruned
            if (keep) bits[r * rb + c / 8] |= static_cast<uint8_t>(1u << (c % 8));
          }
        }
        return Status::ok();
      },
      cancel));
  return first_bad(bad2);
}

}  // namespace

Status sparsity_check(const MaskSpec& s) {
  if (s.dtype != DType::kF32 && s.dtype != DType::kF16 && s.dtype != DType::kBF16)
    return Status(Code::kDtype, "masks take f32, f16 or bf16 weights");
  if (s.score == ScoreKind::kWanda && s.norms == nullptr) return Status(Code::kInvalidArgType, "Wanda scores need input norms");
  if (s.m > 0) {
    if (s.n < 1 || s.n >= s.m) return Status(Code::kOutOfRange, "N:M needs 1 <= N < M, not " + std::to_string(s.n) + ":" + std::to_string(s.m));
    if (s.cols % s.m != 0)
      return Status(Code::kShape, "rows of " + std::to_string(s.cols) + " are not a multiple of M = " + std::to_string(s.m));
  } else {
    const uint64_t group = s.per_row ? s.cols : static_cast<uint64_t>(s.rows) * s.cols;
    if (s.prune > group) return Status(Code::kOutOfRange, "cannot prune more elements than the comparison group holds");
  }
  return Status::ok();
}

Status sparsity_mask(const MaskSpec& s, const void* wv, uint8_t* bits, const std::atomic<bool>* cancel) {
  WS_RETURN_IF_ERROR(sparsity_check(s));
  if (s.rows == 0 || s.cols == 0) return Status::ok();
  const auto* w = static_cast<const uint8_t*>(wv);
  if (s.m > 0) return mask_nm(s, w, bits, cancel);
  if (s.per_row) return mask_per_row(s, w, bits, cancel);
  return mask_per_tensor(s, w, bits, cancel);
}

Status sparsity_apply(const void* wv, size_t es, size_t rows, size_t cols, const uint8_t* bits, void* outv,
                      const std::atomic<bool>* cancel) {
  if (es != 1 && es != 2 && es != 4 && es != 8) return Status(Code::kDtype, "applyMask takes elements of 1, 2, 4 or 8 bytes");
  const auto* w = static_cast<const uint8_t*>(wv);
  auto* out = static_cast<uint8_t*>(outv);
  const size_t rpc = rows_per_chunk(cols), rb = mask_row_bytes(cols);
  const bool simd = simd_level() >= SimdLevel::kAvx512;
  return parallel_for(
      chunk_count(rows, rpc),
      [&](size_t ch) {
        const size_t r0 = ch * rpc, r1 = std::min(rows, (ch + 1) * rpc);
#if defined(__x86_64__)
        if (simd) {
          sparsity_apply_avx512(w + r0 * cols * es, es, r1 - r0, cols, bits + r0 * rb, out + r0 * cols * es);
          return Status::ok();
        }
#endif
        for (size_t r = r0; r < r1; ++r)
          for (size_t c = 0; c < cols; ++c) {
            const size_t i = (r * cols + c) * es;
            if ((bits[r * rb + c / 8] >> (c % 8)) & 1u) {
              if (out != w) std::memcpy(out + i, w + i, es);
            } else {
              std::memset(out + i, 0, es);
            }
          }
        return Status::ok();
      },
      cancel);
}

}  // namespace ws
