// SPDX-License-Identifier: MIT
// Compressed sparse storage (see sparse-formats.h): row-chunked and multi-threaded; the bitmask format writes
// each row at its offset, so outputs do not depend on the thread count.
#include "weightsmith/sparse-formats.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "weightsmith/thread-pool.h"

namespace ws {

namespace {

template <typename T>
inline T load(const uint8_t* p, size_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}
template <typename T>
inline void store(uint8_t* p, size_t i, T v) {
  std::memcpy(p + i * sizeof(T), &v, sizeof(T));
}

size_t rows_per_chunk(size_t cols) { return std::max<size_t>(1, 65536 / std::max<size_t>(cols, 1)); }

// PyTorch's positions for a group's non-zero bits m0..m3 (torch/sparse/_semi_structured_conversions.py).
inline void nv_positions(unsigned m0, unsigned m1, unsigned m3, unsigned* i0, unsigned* i1) {
  const unsigned e0 = m0 & m1, e1 = (m0 ^ 1u) & m1, e2 = (m0 ^ 1u) & (m1 ^ 1u);
  *i0 = e1 | (e2 << 1);
  *i1 = (e0 | e2 | m3) | ((e1 | (m1 ^ 1u)) << 1);
}

// The stored positions of sparse-24-bitmask: the non-zeros, completed with the lowest zero positions.
inline void bm24_positions(unsigned mask, unsigned* i0, unsigned* i1) {
  unsigned pick = mask;
  for (unsigned j = 0; j < 4 && __builtin_popcount(pick) < 2; ++j) pick |= 1u << j;
  *i0 = static_cast<unsigned>(__builtin_ctz(pick));
  *i1 = 31u - static_cast<unsigned>(__builtin_clz(pick));
}

template <typename T>
Status compress_t(SparseFormat f, const uint8_t* w, size_t rows, size_t cols, const uint64_t* offsets, uint8_t* values,
                  uint8_t* bitmask, uint16_t* meta, const std::atomic<bool>* cancel) {
  const size_t rpc = rows_per_chunk(cols), chunks = chunk_count(rows, rpc), rb = (cols + 7) / 8, mw = (cols + 15) / 16;
  std::vector<uint64_t> bad(chunks, UINT64_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t ch) {
        for (size_t r = ch * rpc; r < rows && r < (ch + 1) * rpc; ++r) {
          const size_t base = r * cols;
          if (f == SparseFormat::kBitmask) {
            uint8_t* bm = bitmask + r * rb;
            std::memset(bm, 0, rb);
            size_t k = offsets[r];
            for (size_t c = 0; c < cols; ++c) {
              const T v = load<T>(w, base + c);
              if (v != 0) {
                bm[c / 8] |= static_cast<uint8_t>(1u << (c % 8));
                store<T>(values, k++, v);
              }
            }
            continue;
          }
          if (bitmask) std::memset(bitmask + r * rb, 0, rb);
          if (meta) std::memset(meta + r * mw, 0, mw * 2);
          for (size_t g = 0; g < cols; g += 4) {
            const T v[4] = {load<T>(w, base + g), load<T>(w, base + g + 1), load<T>(w, base + g + 2), load<T>(w, base + g + 3)};
            const unsigned mask = (v[0] != 0) | ((v[1] != 0) << 1) | ((v[2] != 0) << 2) | ((v[3] != 0) << 3);
            if (__builtin_popcount(mask) > 2) {
              bad[ch] = static_cast<uint64_t>(r) << 32 | g;
              return Status::ok();
            }
            unsigned i0, i1;
            if (f == SparseFormat::kNv24) {
              nv_positions(mask & 1u, (mask >> 1) & 1u, (mask >> 3) & 1u, &i0, &i1);
              meta[r * mw + g / 16] = static_cast<uint16_t>(meta[r * mw + g / 16] | ((i0 | (i1 << 2)) << ((g / 4) % 4 * 4)));
            } else {
              bm24_positions(mask, &i0, &i1);
              bitmask[r * rb + (g + i0) / 8] |= static_cast<uint8_t>(1u << ((g + i0) % 8));
              bitmask[r * rb + (g + i1) / 8] |= static_cast<uint8_t>(1u << ((g + i1) % 8));
            }
            store<T>(values, r * (cols / 2) + g / 2, v[i0]);
            store<T>(values, r * (cols / 2) + g / 2 + 1, v[i1]);
          }
        }
        return Status::ok();
      },
      cancel));
  for (uint64_t b : bad) {
    if (b != UINT64_MAX) {
      const uint64_t r = b >> 32, c = b & 0xffffffffu;
      Status st(Code::kShape, "row " + std::to_string(r) + ", columns " + std::to_string(c) + ".." + std::to_string(c + 3) +
                                  " hold more than two non-zeros: not 2:4 sparse");
      st.with("row", r).with("column", c);
      return st;
    }
  }
  return Status::ok();
}

template <typename T>
Status decompress_t(SparseFormat f, const uint8_t* values, size_t n_values, const uint8_t* bitmask, const uint16_t* meta,
                    size_t rows, size_t cols, uint8_t* out, const std::atomic<bool>* cancel) {
  const size_t rpc = rows_per_chunk(cols), chunks = chunk_count(rows, rpc), rb = (cols + 7) / 8, mw = (cols + 15) / 16;
  std::vector<uint64_t> offsets;
  if (f != SparseFormat::kNv24) {
    // Row offsets from the bitmask (the stored row_offsets are not trusted), checked against the value count.
    offsets.resize(rows + 1, 0);
    for (size_t r = 0; r < rows; ++r) {
      uint64_t n = 0;
      for (size_t b = 0; b < rb; ++b) n += static_cast<uint64_t>(__builtin_popcount(bitmask[r * rb + b] & (b + 1 == rb && cols % 8 ? (1u << (cols % 8)) - 1u : 0xffu)));
      offsets[r + 1] = offsets[r] + n;
    }
    if (offsets[rows] != n_values)
      return Status(Code::kShape, "the bitmask marks " + std::to_string(offsets[rows]) + " elements; the compressed values hold " + std::to_string(n_values));
    if (f == SparseFormat::kBitmask24) {
      for (size_t r = 0; r < rows; ++r)
        if (offsets[r + 1] - offsets[r] != cols / 2) return Status(Code::kShape, "a sparse-24-bitmask row must mark half its columns (row " + std::to_string(r) + ")");
    }
  } else if (n_values != rows * (cols / 2)) {
    return Status(Code::kShape, "nv24 values must hold rows x cols/2 elements");
  }
  std::vector<uint64_t> bad(chunks, UINT64_MAX);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t ch) {
        for (size_t r = ch * rpc; r < rows && r < (ch + 1) * rpc; ++r) {
          if (f == SparseFormat::kNv24) {
            for (size_t g = 0; g < cols; g += 4) {
              const unsigned nib = (meta[r * mw + g / 16] >> ((g / 4) % 4 * 4)) & 15u;
              const unsigned i0 = nib & 3u, i1 = nib >> 2;
              if (i0 >= i1) {
                bad[ch] = static_cast<uint64_t>(r) << 32 | g;
                return Status::ok();
              }
              store<T>(out, r * cols + g + i0, load<T>(values, r * (cols / 2) + g / 2));
              store<T>(out, r * cols + g + i1, load<T>(values, r * (cols / 2) + g / 2 + 1));
            }
            continue;
          }
          size_t k = offsets[r];
          for (size_t c = 0; c < cols; ++c)
            if ((bitmask[r * rb + c / 8] >> (c % 8)) & 1u) store<T>(out, r * cols + c, load<T>(values, k++));
        }
        return Status::ok();
      },
      cancel));
  for (uint64_t b : bad) {
    if (b != UINT64_MAX)
      return Status(Code::kShape, "nv24 metadata of row " + std::to_string(b >> 32) + ", columns " + std::to_string(b & 0xffffffffu) +
                                      " is not two increasing positions");
  }
  return Status::ok();
}

}  // namespace

Status sparse_count_rows(const void* wv, size_t es, size_t rows, size_t cols, uint64_t* counts, const std::atomic<bool>* cancel) {
  if (es != 1 && es != 2 && es != 4 && es != 8) return Status(Code::kDtype, "sparse storage takes elements of 1, 2, 4 or 8 bytes");
  const auto* w = static_cast<const uint8_t*>(wv);
  const size_t rpc = rows_per_chunk(cols);
  return parallel_for(
      chunk_count(rows, rpc),
      [&](size_t ch) {
        for (size_t r = ch * rpc; r < rows && r < (ch + 1) * rpc; ++r) {
          uint64_t n = 0;
          const uint8_t* p = w + r * cols * es;
          for (size_t c = 0; c < cols; ++c) {
            uint8_t any = 0;
            for (size_t b = 0; b < es; ++b) any |= p[c * es + b];
            n += any != 0;
          }
          counts[r] = n;
        }
        return Status::ok();
      },
      cancel);
}

Status sparse_compress(SparseFormat f, const void* w, size_t es, size_t rows, size_t cols, const uint64_t* offsets, void* values,
                       uint8_t* bitmask, uint16_t* meta, const std::atomic<bool>* cancel) {
  if (f != SparseFormat::kBitmask && cols % 4 != 0) return Status(Code::kShape, "2:4 formats need rows that are a multiple of 4, not " + std::to_string(cols));
  const auto* x = static_cast<const uint8_t*>(w);
  auto* v = static_cast<uint8_t*>(values);
  switch (es) {
    case 1: return compress_t<uint8_t>(f, x, rows, cols, offsets, v, bitmask, meta, cancel);
    case 2: return compress_t<uint16_t>(f, x, rows, cols, offsets, v, bitmask, meta, cancel);
    case 4: return compress_t<uint32_t>(f, x, rows, cols, offsets, v, bitmask, meta, cancel);
    case 8: return compress_t<uint64_t>(f, x, rows, cols, offsets, v, bitmask, meta, cancel);
    default: return Status(Code::kDtype, "sparse storage takes elements of 1, 2, 4 or 8 bytes");
  }
}

Status sparse_decompress(SparseFormat f, const void* values, size_t n_values, const uint8_t* bitmask, const uint16_t* meta, size_t es,
                         size_t rows, size_t cols, void* out, const std::atomic<bool>* cancel) {
  if (f != SparseFormat::kBitmask && cols % 4 != 0) return Status(Code::kShape, "2:4 formats need rows that are a multiple of 4, not " + std::to_string(cols));
  const auto* v = static_cast<const uint8_t*>(values);
  auto* o = static_cast<uint8_t*>(out);
  switch (es) {
    case 1: return decompress_t<uint8_t>(f, v, n_values, bitmask, meta, rows, cols, o, cancel);
    case 2: return decompress_t<uint16_t>(f, v, n_values, bitmask, meta, rows, cols, o, cancel);
    case 4: return decompress_t<uint32_t>(f, v, n_values, bitmask, meta, rows, cols, o, cancel);
    case 8: return decompress_t<uint64_t>(f, v, n_values, bitmask, meta, rows, cols, o, cancel);
    default: return Status(Code::kDtype, "sparse storage takes elements of 1, 2, 4 or 8 bytes");
  }
}

}  // namespace ws
