// SPDX-License-Identifier: MIT
// Scalar reference of the pruning masks (the spec; see sparsity.h): every comparison group is sorted in pruning
// order, (key ascending, index descending), and the first ones are pruned (unstructured) or the last N kept (N:M).
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../sparsity-kernels.h"

namespace ws {

Status sparsity_check(const MaskSpec& s);

namespace {

Status non_finite(size_t i) {
  Status st(Code::kNonFinite, "non-finite weight or score at index " + std::to_string(i));
  st.with("index", static_cast<uint64_t>(i));
  return st;
}

void set_bit(uint8_t* bits, size_t cols, size_t r, size_t c) { bits[r * mask_row_bytes(cols) + c / 8] |= static_cast<uint8_t>(1u << (c % 8)); }

}  // namespace

Status sparsity_mask_ref(const MaskSpec& s, const void* wv, uint8_t* bits) {
  WS_RETURN_IF_ERROR(sparsity_check(s));
  const auto* w = static_cast<const uint8_t*>(wv);
  std::memset(bits, 0, s.rows * mask_row_bytes(s.cols));
  // (key, index) in pruning order: key ascending, then index descending.
  auto prune_first = [](const std::pair<uint32_t, size_t>& a, const std::pair<uint32_t, size_t>& b) {
    return a.first != b.first ? a.first < b.first : a.second > b.second;
  };
  std::vector<std::pair<uint32_t, size_t>> group;
  auto key_of = [&](size_t r, size_t c, std::pair<uint32_t, size_t>* out) -> Status {
    uint32_t k;
    if (!score_key(s, w, r, c, &k)) return non_finite(r * s.cols + c);
    *out = {k, r * s.cols + c};
    return Status::ok();
  };
  if (s.m > 0) {
    for (size_t r = 0; r < s.rows; ++r) {
      for (size_t g = 0; g < s.cols; g += s.m) {
        group.resize(s.m);
        for (size_t j = 0; j < s.m; ++j) WS_RETURN_IF_ERROR(key_of(r, g + j, &group[j]));
        std::sort(group.begin(), group.end(), prune_first);
        for (size_t j = s.m - s.n; j < s.m; ++j) {
          const size_t c = group[j].second - r * s.cols;
          if (group[j].first != 0) set_bit(bits, s.cols, r, c);  // base-pruned elements stay pruned
        }
      }
    }
    return Status::ok();
  }
  const size_t groups = s.per_row ? s.rows : 1;
  const size_t per = s.per_row ? s.cols : s.rows * s.cols;
  for (size_t gi = 0; gi < groups; ++gi) {
    group.resize(per);
    for (size_t j = 0; j < per; ++j) {
      const size_t i = gi * per + j;
      WS_RETURN_IF_ERROR(key_of(i / s.cols, i % s.cols, &group[j]));
    }
    std::sort(group.begin(), group.end(), prune_first);
    for (size_t j = static_cast<size_t>(s.prune); j < per; ++j) {
      if (group[j].first != 0) set_bit(bits, s.cols, group[j].second / s.cols, group[j].second % s.cols);
    }
  }
  return Status::ok();
}

void mask_row_counts(const uint8_t* bits, size_t rows, size_t cols, uint32_t* counts) {
  const size_t rb = mask_row_bytes(cols);
  for (size_t r = 0; r < rows; ++r) {
    uint32_t n = 0;
    for (size_t b = 0; b < rb; ++b) n += static_cast<uint32_t>(__builtin_popcount(bits[r * rb + b]));
    counts[r] = n;
  }
}

}  // namespace ws
