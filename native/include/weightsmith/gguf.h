// SPDX-License-Identifier: MIT
// Strict GGUF v3 reader (FORMATS.md b2, BAD-INPUTS.md section B). Every count and length is checked against
// the bytes that remain before anything is allocated from it; no recursion (nested arrays are refused, as
// ggml does); tensor data must follow ggml's strict sequential layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "weightsmith/mapped-file.h"
#include "weightsmith/status.h"

namespace ws {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8,
  kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12, kCount = 13
};

constexpr uint64_t kGgufMaxString = uint64_t{1} << 30;    // ggml's GGUF_MAX_STRING_LENGTH
constexpr uint64_t kGgufMaxArray = uint64_t{1} << 30;     // ggml's GGUF_MAX_ARRAY_ELEMENTS
constexpr uint64_t kGgufMaxKeyLength = 65535;             // spec
constexpr uint64_t kGgufMaxNameLength = 63;               // ggml: name length < GGML_MAX_NAME (64)
constexpr uint64_t kGgufDefaultAlignment = 32;

// One metadata value. Scalars live in u/i/f/s; arrays keep their elements: numeric ones as raw little-endian
// bytes in `raw`, strings in `strings`.
struct GgufValue {
  GgufType type = GgufType::kU8;
  GgufType elem_type = GgufType::kU8;  // arrays only
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string s;
  uint64_t count = 0;  // arrays only
  std::vector<uint8_t> raw;
  std::vector<std::string> strings;
};

struct GgufKV {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous dimension
  uint32_t type = 0;              // ggml type id
  uint64_t offset = 0;            // relative to the data section
  uint64_t nbytes = 0;
};

struct GgufFile {
  uint32_t version = 0;
  std::vector<GgufKV> kvs;
  std::vector<GgufTensorInfo> tensors;  // in file order (which is data order)
  uint64_t alignment = kGgufDefaultAlignment;
  uint64_t data_start = 0;  // absolute file offset of the data section
};

// Parses and validates the file's metadata and tensor table (not the tensor data).
Status gguf_parse(const MappedFile& file, GgufFile* out);

// The same over a memory image (fuzzing and tests).
Status gguf_parse_bytes(const uint8_t* data, uint64_t size, GgufFile* out);

}  // namespace ws
