// SPDX-License-Identifier: MIT
// Strict safetensors header parser (FORMATS.md b1, BAD-INPUTS.md section A). It validates everything the
// reference implementation validates and more (duplicate keys, nesting depth, tensor count and rank limits),
// parses every integer as u64 (never through a double), and never allocates from an untrusted length before
// checking it against the file size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "weightsmith/dtype.h"
#include "weightsmith/status.h"

namespace ws {

constexpr uint64_t kStMaxHeaderSize = 100000000;  // the reference MAX_HEADER_SIZE
constexpr int kJsonMaxDepth = 128;                // serde_json's default recursion limit

struct StLimits {
  uint64_t max_tensors = 1000000;
  uint64_t max_rank = 64;
};

struct StTensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // relative to the start of the byte buffer (file offset 8 + header_size)
  uint64_t end = 0;
};

struct StHeader {
  uint64_t header_size = 0;  // N
  bool has_metadata = false;
  std::vector<std::pair<std::string, std::string>> metadata;  // in file order
  std::vector<StTensorInfo> tensors;                            // sorted by (begin, end), then file order
  uint64_t data_start() const { return 8 + header_size; }
};

// Step 1: the 8-byte prefix. `prefix` holds min(8, file_size) bytes. On success *header_size = N, and the
// caller reads the N header bytes at offset 8.
Status st_read_prefix(const uint8_t* prefix, uint64_t file_size, uint64_t* header_size);

// Step 2: validates header bytes [8, 8 + N) against the file size and fills *out.
Status st_parse_header(const uint8_t* header, uint64_t header_size, uint64_t file_size, const StLimits& limits,
                       StHeader* out);

// Both steps over a whole file image in memory (used by the fuzz target and tests).
Status st_parse_file(const uint8_t* data, uint64_t size, const StLimits& limits, StHeader* out);

}  // namespace ws
