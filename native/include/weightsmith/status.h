// SPDX-License-Identifier: MIT
// Status: how every native function reports failure. Kernels and core code return a Status; only the
// binding layer turns it into a JavaScript exception (in one function). Codes are the stable public codes of
// DESIGN.md section 3; the message names the file, tensor or parameter; fields carry context (path, tensor,
// offset, sizes) that the binding copies onto the JS error object.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ws {

// Keep in the same order as kCodeNames in status.cpp. kErrno carries a system errno (ENOENT, ENOSPC...).
enum class Code : int {
  kOk = 0,
  kStHeaderTooSmall,
  kStHeaderTooLarge,
  kStHeaderLength,
  kStHeaderUtf8,
  kStHeaderJson,
  kStDuplicateKey,
  kStMetadataType,
  kStDtype,
  kStOffset,
  kStTensorInfo,
  kStOverflow,
  kStMisaligned,
  kStIncompleteBuffer,
  kLimitExceeded,
  kGgufMagic,
  kGgufVersion,
  kGgufEndianness,
  kGgufCount,
  kGgufString,
  kGgufType,
  kGgufArray,
  kGgufDuplicate,
  kGgufAlignment,
  kGgufShape,
  kGgufTensorType,
  kGgufOverflow,
  kGgufOffset,
  kGgufTruncated,
  kGgufName,
  kGgufMetadataType,
  kNotRegularFile,
  kFileChanged,
  kFileTooLarge,
  kHandleClosed,
  kTensorNotFound,
  kShape,
  kDtype,
  kNonFinite,
  kNoConvergence,
  kOutOfMemory,
  kNoDevice,
  kCuda,
  kInternal,
  kInvalidArgType,
  kOutOfRange,
  kAborted,
  kErrno,
  kCount
};

// The stable string for a code ("ERR_ST_OFFSET"); kErrno maps to "ERRNO" (the binding uses the errno name).
const char* code_name(Code code);

// One context field of an error: a string or an unsigned integer value.
struct StatusField {
  std::string key;
  std::string text;
  uint64_t number = 0;
  bool is_number = false;
};

class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status from_errno(int err, std::string message) {
    Status s(Code::kErrno, std::move(message));
    s.errno_ = err;
    return s;
  }

  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  int sys_errno() const { return errno_; }
  const std::vector<StatusField>& fields() const { return fields_; }

  Status& with(const char* key, std::string text) {
    fields_.push_back(StatusField{key, std::move(text), 0, false});
    return *this;
  }
  Status& with(const char* key, uint64_t number) {
    fields_.push_back(StatusField{key, std::string(), number, true});
    return *this;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
  int errno_ = 0;
  std::vector<StatusField> fields_;
};

#define WS_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::ws::Status ws_status_ = (expr);     \
    if (!ws_status_.is_ok()) return ws_status_; \
  } while (0)

}  // namespace ws
