// SPDX-License-Identifier: MIT
// AVX-512 pruning kernels: mask application (each mask byte or word drives a zero-masking move, vmovdqu8/16/32/64
// with a k mask, the bits used exactly as stored, LSB-first per row), score keys, N:M by in-group rotations, and
// per-row selection (sampled pivots, compressed candidates, bisection). The target is switched on per function after
// the includes (see convert-avx2.cpp).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../../sparsity-kernels.h"
#include "weightsmith/sparsity.h"

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx2,fma,f16c")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "avx512-weights.h"  // inside the target region

namespace ws {

namespace {

// 64 mask bits of a row from bit c (c a multiple of 8), fewer at the row's end (the rest zero).
inline uint64_t bits64(const uint8_t* row, size_t c, size_t cols) {
  uint64_t m = 0;
  const size_t bytes = (cols - c + 7) / 8;
  std::memcpy(&m, row + c / 8, bytes < 8 ? bytes : 8);
  if (cols - c < 64) m &= (uint64_t{1} << (cols - c)) - 1;
  return m;
}

}  // namespace

void sparsity_apply_avx512(const uint8_t* w, size_t es, size_t rows, size_t cols, const uint8_t* bits, uint8_t* out) {
  const size_t rb = mask_row_bytes(cols);
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* row = bits + r * rb;
    const uint8_t* src = w + r * cols * es;
    uint8_t* dst = out + r * cols * es;
    for (size_t c = 0; c < cols; c += 64) {
      const uint64_t m = bits64(row, c, cols);
      const size_t n = cols - c < 64 ? cols - c : 64;
      const size_t bytes = n * es;
      const uint8_t* s = src + c * es;
      uint8_t* d = dst + c * es;
      // 64 elements = 64 * es bytes: chunks of 64 bytes, each with the matching slice of m.
      for (size_t off = 0; off < bytes; off += 64) {
        const size_t e0 = off / es, ecount = (bytes - off < 64 ? bytes - off : 64) / es;
        const uint64_t sub = (m >> e0) & (ecount >= 64 ? ~uint64_t{0} : ((uint64_t{1} << ecount) - 1));
        const uint64_t lanes = bytes - off < 64 ? (uint64_t{1} << (bytes - off)) - 1 : ~uint64_t{0};  // valid bytes
        const __mmask64 load = static_cast<__mmask64>(lanes);
        const __m512i v = _mm512_maskz_loadu_epi8(load, s + off);
        __m512i z;
        switch (es) {
          case 1: z = _mm512_maskz_mov_epi8(static_cast<__mmask64>(sub), v); break;
          case 2: z = _mm512_maskz_mov_epi16(static_cast<__mmask32>(sub), v); break;
          case 4: z = _mm512_maskz_mov_epi32(static_cast<__mmask16>(sub), v); break;
          default: z = _mm512_maskz_mov_epi64(static_cast<__mmask8>(sub), v); break;
        }
        _mm512_mask_storeu_epi8(d + off, load, z);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------ mask kernels

namespace {

template <DType D, bool kWanda>
bool keys_row(const MaskSpec& s, const uint8_t* w, size_t r, uint32_t* keys) {
  const size_t i0 = r * s.cols;
  const __m512i mag = _mm512_set1_epi32(0x7fffffff), expo = _mm512_set1_epi32(0x7f800000), one = _mm512_set1_epi32(1);
  __mmask16 bad = 0;
  size_t c = 0;
  for (; c + 16 <= s.cols; c += 16) {
    const __m512i v = load16_f32_bits<D>(w, i0 + c);
    bad |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(v, expo), expo);
    __m512i b = _mm512_and_si512(v, mag);
    if constexpr (kWanda) {
      b = _mm512_and_si512(_mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(b), _mm512_loadu_ps(s.norms + c))), mag);
      bad |= _mm512_cmpge_epu32_mask(b, expo);
    }
    __m512i key = _mm512_add_epi32(b, one);
    if (s.base) {
      uint16_t m;
      std::memcpy(&m, s.base + r * mask_row_bytes(s.cols) + c / 8, 2);
      key = _mm512_maskz_mov_epi32(static_cast<__mmask16>(m), key);
    }
    _mm512_storeu_si512(keys + c, key);
  }
  if (bad) return false;
  for (; c < s.cols; ++c)
    if (!score_key(s, w, r, c, &keys[c])) return false;
  return true;
}

// In a group of kM lanes, lane i is ahead of lane j when its key is higher, or equal at a lower index.
template <uint32_t kM>
void nm_row(const uint32_t* keys, size_t cols, uint32_t n, uint8_t* row) {
  __m512i rot[kM], lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  __mmask16 wrap[kM];
  for (uint32_t k = 1; k < kM; ++k) {
    // rot[k] lane i reads lane (i & ~(kM-1)) | ((i + k) & (kM-1)); it lies before i exactly when (i % kM) + k >= kM.
    const __m512i grp = _mm512_and_si512(lane, _mm512_set1_epi32(~static_cast<int>(kM - 1)));
    const __m512i pos = _mm512_and_si512(lane, _mm512_set1_epi32(static_cast<int>(kM - 1)));
    rot[k] = _mm512_or_si512(grp, _mm512_and_si512(_mm512_add_epi32(pos, _mm512_set1_epi32(static_cast<int>(k))), _mm512_set1_epi32(static_cast<int>(kM - 1))));
    wrap[k] = _mm512_cmpge_epi32_mask(_mm512_add_epi32(pos, _mm512_set1_epi32(static_cast<int>(k))), _mm512_set1_epi32(static_cast<int>(kM)));
  }
  const __m512i vn = _mm512_set1_epi32(static_cast<int>(n)), one = _mm512_set1_epi32(1);
  size_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const __m512i v = _mm512_loadu_si512(keys + c);
    __m512i ahead = _mm512_setzero_si512();
    for (uint32_t k = 1; k < kM; ++k) {
      const __m512i o = _mm512_permutexvar_epi32(rot[k], v);
      const __mmask16 a = _mm512_cmpgt_epu32_mask(o, v) | (_mm512_cmpeq_epi32_mask(o, v) & wrap[k]);
      ahead = _mm512_mask_add_epi32(ahead, a, ahead, one);
    }
    const __mmask16 keep = _mm512_cmplt_epu32_mask(ahead, vn) & _mm512_test_epi32_mask(v, v);
    const uint16_t bits = static_cast<uint16_t>(keep);
    std::memcpy(row + c / 8, &bits, 2);
  }
  for (; c < cols; c += kM) {  // a last group of kM when cols % 16 != 0 (cols is a multiple of kM)
    for (uint32_t i = 0; i < kM; ++i) {
      uint32_t ahead = 0;
      for (uint32_t j = 0; j < kM; ++j) ahead += static_cast<uint32_t>((keys[c + j] > keys[c + i]) | ((keys[c + j] == keys[c + i]) & (j < i)));
      if (ahead < n && keys[c + i] != 0) row[(c + i) / 8] |= static_cast<uint8_t>(1u << ((c + i) % 8));
      else row[(c + i) / 8] &= static_cast<uint8_t>(~(1u << ((c + i) % 8)));
    }
  }
}

inline __m512i iota16() { return _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0); }

}  // namespace

bool sparsity_row_keys_avx512(const MaskSpec& s, const uint8_t* w, size_t r, uint32_t* keys) {
  if (s.score == ScoreKind::kRandom) return false;
  const bool wanda = s.score == ScoreKind::kWanda;
  switch (s.dtype) {
    case DType::kF32: return wanda ? keys_row<DType::kF32, true>(s, w, r, keys) : keys_row<DType::kF32, false>(s, w, r, keys);
    case DType::kBF16: return wanda ? keys_row<DType::kBF16, true>(s, w, r, keys) : keys_row<DType::kBF16, false>(s, w, r, keys);
    default: return wanda ? keys_row<DType::kF16, true>(s, w, r, keys) : keys_row<DType::kF16, false>(s, w, r, keys);
  }
}

bool sparsity_nm_row_avx512(const uint32_t* keys, size_t cols, uint32_t n, uint32_t m, uint8_t* row) {
  if (m == 4) nm_row<4>(keys, cols, n, row);
  else if (m == 8) nm_row<8>(keys, cols, n, row);
  else if (m == 16) nm_row<16>(keys, cols, n, row);
  else return false;
  return true;
}

void sparsity_threshold_row_avx512(const uint32_t* keys, size_t cols, uint32_t tk, uint32_t tc, uint8_t* row) {
  const __m512i vk = _mm512_set1_epi32(static_cast<int>(tk)), vc = _mm512_set1_epi32(static_cast<int>(tc));
  size_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const __m512i v = _mm512_loadu_si512(keys + c);
    const __m512i idx = _mm512_add_epi32(iota16(), _mm512_set1_epi32(static_cast<int>(c)));
    const __mmask16 keep = (_mm512_cmpgt_epu32_mask(v, vk) | (_mm512_cmpeq_epi32_mask(v, vk) & _mm512_cmplt_epu32_mask(idx, vc))) &
                           _mm512_test_epi32_mask(v, v);
    const uint16_t bits = static_cast<uint16_t>(keep);
    std::memcpy(row + c / 8, &bits, 2);
  }
  for (; c < cols; c += 8) {
    uint32_t byte = 0;
    for (size_t j = 0; j < 8 && c + j < cols; ++j) {
      const uint32_t key = keys[c + j];
      byte |= static_cast<uint32_t>(key != 0 && (key > tk || (key == tk && c + j < tc))) << j;
    }
    row[c / 8] = static_cast<uint8_t>(byte);
  }
}

void sparsity_select_avx512(const uint32_t* keys, size_t cols, uint64_t k, uint32_t* scratch, uint32_t* tk, uint32_t* tc) {
  // Pivots from a sample bracketing the k-th key (by rank k/cols), then the candidate keys between them. The
  // candidates are always exactly the row's keys in [lo, hi]: indices are only collected at the end.
  constexpr size_t kSample = 64, kMargin = 8;
  uint32_t lo = 0u, hi = 0xffffffffu;
  if (cols >= kSample) {
    // 64 samples; the rank of each (ties by position) by 64 broadcast compares, then the two bracketing ones.
    alignas(64) uint32_t sample[kSample];
    const size_t stride = cols / kSample;
    for (size_t i = 0, j = 0; i < kSample; ++i, j += stride) sample[i] = keys[j];
    __m512i v[4], rank[4];
    for (int q = 0; q < 4; ++q) {
      v[q] = _mm512_load_si512(sample + 16 * q);
      rank[q] = _mm512_setzero_si512();
    }
    const __m512i one = _mm512_set1_epi32(1), iota = iota16();
    for (size_t j = 0; j < kSample; ++j) {
      const __m512i b = _mm512_set1_epi32(static_cast<int>(sample[j]));
      for (int q = 0; q < 4; ++q) {
        const __m512i pos = _mm512_add_epi32(iota, _mm512_set1_epi32(16 * q));
        const __mmask16 before = _mm512_cmplt_epu32_mask(b, v[q]) |
                                 (_mm512_cmpeq_epi32_mask(b, v[q]) & _mm512_cmpgt_epi32_mask(pos, _mm512_set1_epi32(static_cast<int>(j))));
        rank[q] = _mm512_mask_add_epi32(rank[q], before, rank[q], one);
      }
    }
    const size_t at = static_cast<size_t>((k * kSample) / cols);
    for (int q = 0; q < 4; ++q) {
      if (at >= kMargin) {
        const __mmask16 m = _mm512_cmpeq_epi32_mask(rank[q], _mm512_set1_epi32(static_cast<int>(at - kMargin)));
        if (m) lo = sample[16 * q + __builtin_ctz(m)];
      }
      if (at + kMargin < kSample) {
        const __mmask16 m = _mm512_cmpeq_epi32_mask(rank[q], _mm512_set1_epi32(static_cast<int>(at + kMargin)));
        if (m) hi = sample[16 * q + __builtin_ctz(m)];
      }
    }
  }
  uint32_t* ck = scratch;  // candidate keys
  size_t nc = 0;
  uint64_t below = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo)), vspan = _mm512_set1_epi32(static_cast<int>(hi - lo));
    nc = 0;
    below = 0;
    size_t c = 0;
    for (; c + 16 <= cols; c += 16) {
      const __m512i v = _mm512_loadu_si512(keys + c);
      const __mmask16 lt = _mm512_cmplt_epu32_mask(v, vlo);
      const __mmask16 in = _mm512_cmple_epu32_mask(_mm512_sub_epi32(v, vlo), vspan) & static_cast<__mmask16>(~lt);
      below += static_cast<uint64_t>(__builtin_popcount(lt));
      _mm512_storeu_si512(ck + nc, _mm512_maskz_compress_epi32(in, v));
      nc += static_cast<size_t>(__builtin_popcount(in));
    }
    for (; c < cols; ++c) {
      if (keys[c] < lo) ++below;
      else if (keys[c] <= hi) ck[nc++] = keys[c];
    }
    if (below < k && k <= below + nc) break;
    lo = 0;  // the sample missed: every element is a candidate
    hi = 0xffffffffu;
  }
  uint64_t need = k - below;  // 1 <= need <= nc
  // Bisection on the key value, keeping only the candidates on the side that holds the need-th.
  while (nc > 48 && lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const __m512i vm = _mm512_set1_epi32(static_cast<int>(mid));
    size_t le = 0;
    size_t c = 0;
    for (; c + 16 <= nc; c += 16) le += static_cast<size_t>(__builtin_popcount(_mm512_cmple_epu32_mask(_mm512_loadu_si512(ck + c), vm)));
    for (; c < nc; ++c) le += ck[c] <= mid;
    const bool left = le >= need;
    size_t out = 0;
    for (c = 0; c + 16 <= nc; c += 16) {
      const __m512i v = _mm512_loadu_si512(ck + c);
      const __mmask16 keep = left ? _mm512_cmple_epu32_mask(v, vm) : _mm512_cmpgt_epu32_mask(v, vm);
      _mm512_storeu_si512(ck + out, _mm512_maskz_compress_epi32(keep, v));
      out += static_cast<size_t>(__builtin_popcount(keep));
    }
    for (; c < nc; ++c)
      if ((ck[c] <= mid) == left) ck[out++] = ck[c];
    nc = out;
    if (left) hi = mid;
    else {
      need -= le;
      lo = mid + 1;
    }
  }
  // The candidates with their indices (the row's keys in [lo, hi], in index order), as composites; the need-th in
  // pruning order (key ascending, index descending).
  uint64_t* comp = reinterpret_cast<uint64_t*>(scratch + cols + 16);
  size_t m = 0;
  const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo)), vspan = _mm512_set1_epi32(static_cast<int>(hi - lo));
  size_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    __mmask16 in = _mm512_cmple_epu32_mask(_mm512_sub_epi32(_mm512_loadu_si512(keys + c), vlo), vspan);
    while (in) {
      const unsigned j = static_cast<unsigned>(__builtin_ctz(in));
      in = static_cast<__mmask16>(in & (in - 1));
      comp[m++] = uint64_t{keys[c + j]} << 32 | (~static_cast<uint32_t>(c + j));
    }
  }
  for (; c < cols; ++c)
    if (keys[c] >= lo && keys[c] <= hi) comp[m++] = uint64_t{keys[c]} << 32 | (~static_cast<uint32_t>(c));
  std::nth_element(comp, comp + (need - 1), comp + m);
  *tk = static_cast<uint32_t>(comp[need - 1] >> 32);
  *tc = ~static_cast<uint32_t>(comp[need - 1]);
}

}  // namespace ws

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
