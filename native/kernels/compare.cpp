// SPDX-License-Identifier: MIT
#include "weightsmith/compare.h"

#include <cmath>
#include <vector>

#include "weightsmith/thread-pool.h"

namespace ws {

Status compare_f32(const float* a, const float* b, size_t n, CompareSums* out, const std::atomic<bool>* cancel) {
  constexpr size_t kChunk = 1 << 16;
  const size_t chunks = chunk_count(n, kChunk);
  std::vector<CompareSums> part(chunks);
  WS_RETURN_IF_ERROR(parallel_for(
      chunks,
      [&](size_t c) {
        const size_t lo = c * kChunk, hi = lo + kChunk < n ? lo + kChunk : n;
        CompareSums s;
        for (size_t i = lo; i < hi; ++i) {
          const double x = a[i], y = b[i], d = x - y;
          s.sse += d * d;
          const double ad = std::fabs(d);
          if (ad > s.max_abs || std::isnan(ad)) s.max_abs = ad;
          s.aa += x * x;
          s.bb += y * y;
          s.ab += x * y;
        }
        part[c] = s;
        return Status::ok();
      },
      cancel));
  CompareSums total;
  for (const auto& s : part) {
    total.sse += s.sse;
    if (s.max_abs > total.max_abs || std::isnan(s.max_abs)) total.max_abs = s.max_abs;
    total.aa += s.aa;
    total.bb += s.bb;
    total.ab += s.ab;
  }
  total.n = n;
  *out = total;
  return Status::ok();
}

}  // namespace ws
