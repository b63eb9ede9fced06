// SPDX-License-Identifier: MIT
#include "weightsmith/status.h"

namespace ws {

namespace {
constexpr const char* kCodeNames[] = {
    "OK",
    "ERR_ST_HEADER_TOO_SMALL",
    "ERR_ST_HEADER_TOO_LARGE",
    "ERR_ST_HEADER_LENGTH",
    "ERR_ST_HEADER_UTF8",
    "ERR_ST_HEADER_JSON",
    "ERR_ST_DUPLICATE_KEY",
    "ERR_ST_METADATA_TYPE",
    "ERR_ST_DTYPE",
    "ERR_ST_OFFSET",
    "ERR_ST_TENSOR_INFO",
    "ERR_ST_OVERFLOW",
    "ERR_ST_MISALIGNED",
    "ERR_ST_INCOMPLETE_BUFFER",
    "ERR_LIMIT_EXCEEDED",
    "ERR_GGUF_MAGIC",
    "ERR_GGUF_VERSION",
    "ERR_GGUF_ENDIANNESS",
    "ERR_GGUF_COUNT",
    "ERR_GGUF_STRING",
    "ERR_GGUF_TYPE",
    "ERR_GGUF_ARRAY",
    "ERR_GGUF_DUPLICATE",
    "ERR_GGUF_ALIGNMENT",
    "ERR_GGUF_SHAPE",
    "ERR_GGUF_TENSOR_TYPE",
    "ERR_GGUF_OVERFLOW",
    "ERR_GGUF_OFFSET",
    "ERR_GGUF_TRUNCATED",
    "ERR_GGUF_NAME",
    "ERR_GGUF_METADATA_TYPE",
    "ERR_NOT_REGULAR_FILE",
    "ERR_FILE_CHANGED",
    "ERR_FILE_TOO_LARGE",
    "ERR_HANDLE_CLOSED",
    "ERR_TENSOR_NOT_FOUND",
    "ERR_SHAPE",
    "ERR_DTYPE",
    "ERR_NON_FINITE",
    "ERR_NO_CONVERGENCE",
    "ERR_OUT_OF_MEMORY",
    "ERR_NO_DEVICE",
    "ERR_CUDA",
    "ERR_INTERNAL",
    "ERR_INVALID_ARG_TYPE",
    "ERR_OUT_OF_RANGE",
    "ABORT_ERR",
    "ERRNO",
};
static_assert(sizeof(kCodeNames) / sizeof(kCodeNames[0]) == static_cast<size_t>(Code::kCount),
              "one name per status code");
}  // namespace

const char* code_name(Code code) {
  const auto i = static_cast<size_t>(code);
  return i < static_cast<size_t>(Code::kCount) ? kCodeNames[i] : "ERR_INTERNAL";
}

}  // namespace ws
