// SPDX-License-Identifier: MIT
// Shared helpers of the binding layer: the one function that turns a Status into a JS error, argument
// unpacking with C++-side validation, and the abort token shared with async workers.
#pragma once

#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "weightsmith/dtype.h"
#include "weightsmith/mapped-file.h"
#include "weightsmith/status.h"

namespace ws::binding {

struct AddonData {
  Napi::FunctionReference make_error;  // lib/errors.ts makeNativeError(code, message, fields)
  Napi::FunctionReference native_file_ctor;
};

AddonData& addon_data(Napi::Env env);

// Builds the JS error for a failed Status (the only place this conversion happens).
Napi::Value status_to_error(Napi::Env env, const Status& status);
// Throws it (as a C++ exception; node-addon-api turns it into a JS throw at the boundary).
[[noreturn]] void throw_status(Napi::Env env, const Status& status);

[[noreturn]] void throw_type(Napi::Env env, const std::string& message);
[[noreturn]] void throw_range(Napi::Env env, const std::string& message);

// Raw bytes of an ArrayBuffer, TypedArray or Buffer; throws ERR_INVALID_ARG_TYPE otherwise.
struct Bytes {
  uint8_t* data = nullptr;
  size_t length = 0;
};
Bytes get_bytes(const Napi::Value& v, const char* param);

DType get_dtype(const Napi::Value& v, const char* param);
size_t get_size(const Napi::Value& v, const char* param);

// An abort flag shared between the JS AbortToken object and native workers.
class AbortToken : public Napi::ObjectWrap<AbortToken> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit AbortToken(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag() const { return flag_; }

 private:
  Napi::Value Abort(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

// Type tags (napi_type_tag_object): a foreign or forged object is never unwrapped as one of ours.
extern const napi_type_tag kNativeFileTag;
extern const napi_type_tag kAbortTokenTag;
void tag_object(const Napi::Value& obj, const napi_type_tag& tag);
bool has_tag(const Napi::Value& v, const napi_type_tag& tag);

// The flag behind an optional AbortToken argument (null/undefined: a flag nobody sets).
std::shared_ptr<std::atomic<bool>> get_abort_flag(const Napi::Value& v);

// Runs `work` on a libuv thread and settles a promise with its Status: resolved with undefined, or rejected
// with the error status_to_error builds. Until it settles it keeps the JS objects in `keep` alive (the buffers
// the work reads and writes) and holds `pins` (the mappings behind them); `cancel` is the abort flag the
// work polls. Exceptions in the work become ERR_INTERNAL / ERR_OUT_OF_MEMORY.
class StatusWorker : public Napi::AsyncWorker {
 public:
  StatusWorker(Napi::Env env, std::function<Status(const std::atomic<bool>*)> work, const std::vector<Napi::Value>& keep,
               std::vector<std::shared_ptr<MappedFile>> pins, std::shared_ptr<std::atomic<bool>> cancel);
  // Queues the work and returns its promise.
  static Napi::Promise Start(Napi::Env env, std::function<Status(const std::atomic<bool>*)> work,
                             const std::vector<Napi::Value>& keep, std::vector<std::shared_ptr<MappedFile>> pins,
                             std::shared_ptr<std::atomic<bool>> cancel);
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  std::function<Status(const std::atomic<bool>*)> work_;
  std::vector<Napi::ObjectReference> keep_;
  std::vector<std::shared_ptr<MappedFile>> pins_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  Napi::Promise::Deferred deferred_;
  Status status_;
};

}  // namespace ws::binding
