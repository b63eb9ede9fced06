// SPDX-License-Identifier: MIT
#include "common.h"

#include <cmath>
#include <new>

namespace ws::binding {

AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

Napi::Value status_to_error(Napi::Env env, const Status& status) {
  Napi::Object fields = Napi::Object::New(env);
  for (const auto& f : status.fields()) {
    if (f.is_number) {
      fields.Set(f.key, f.number <= (uint64_t{1} << 53) ? Napi::Value(Napi::Number::New(env, static_cast<double>(f.number)))
                                                        : Napi::Value(Napi::BigInt::New(env, f.number)));
    } else {
      fields.Set(f.key, Napi::String::New(env, f.text));
    }
  }
  // System errors travel as "ERRNO" plus the number; lib/errors.ts names them (ENOENT...) like Node does.
  const std::string code = code_name(status.code());
  if (status.code() == Code::kErrno) fields.Set("errno", Napi::Number::New(env, -status.sys_errno()));
  AddonData& data = addon_data(env);
  if (data.make_error.IsEmpty()) {
    Napi::Error e = Napi::Error::New(env, status.message());
    e.Set("code", Napi::String::New(env, code));
    return e.Value();
  }
  return data.make_error.Call({Napi::String::New(env, code), Napi::String::New(env, status.message()), fields});
}

void throw_status(Napi::Env env, const Status& status) {
  throw Napi::Error(env, status_to_error(env, status));
}

void throw_type(Napi::Env env, const std::string& message) {
  throw_status(env, Status(Code::kInvalidArgType, message));
}

void throw_range(Napi::Env env, const std::string& message) {
  throw_status(env, Status(Code::kOutOfRange, message));
}

Bytes get_bytes(const Napi::Value& v, const char* param) {
  Bytes b;
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = v.As<Napi::ArrayBuffer>();
    b.data = static_cast<uint8_t*>(ab.Data());
    b.length = ab.ByteLength();
  } else if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    b.data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    b.length = ta.ByteLength();
  } else {
    throw_type(v.Env(), std::string("The \"") + param + "\" argument must be a TypedArray or ArrayBuffer");
  }
  return b;
}

DType get_dtype(const Napi::Value& v, const char* param) {
  if (!v.IsString()) throw_type(v.Env(), std::string("The \"") + param + "\" argument must be a dtype name");
  DType d;
  const std::string s = v.As<Napi::String>().Utf8Value();
  if (!dtype_from_name(s, &d)) throw_status(v.Env(), Status(Code::kDtype, std::string("unknown dtype '") + s + "'"));
  return d;
}

size_t get_size(const Napi::Value& v, const char* param) {
  if (!v.IsNumber()) throw_type(v.Env(), std::string("The \"") + param + "\" argument must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > 9007199254740991.0)
    throw_range(v.Env(), std::string("The \"") + param + "\" argument must be a non-negative safe integer");
  return static_cast<size_t>(d);
}

// Random 128-bit values, fixed for this addon.
const napi_type_tag kNativeFileTag = {0x8c7a0b1e5d3f4a21ULL, 0x9e2b6c4d1a0f7e35ULL};
const napi_type_tag kAbortTokenTag = {0x3f6e2d9c8b1a4705ULL, 0xd4c3b2a190817263ULL};

void tag_object(const Napi::Value& obj, const napi_type_tag& tag) {
  if (napi_type_tag_object(obj.Env(), obj, &tag) != napi_ok) throw_status(obj.Env(), Status(Code::kInternal, "cannot tag a native object"));
}

bool has_tag(const Napi::Value& v, const napi_type_tag& tag) {
  if (!v.IsObject()) return false;
  bool result = false;
  return napi_check_object_type_tag(v.Env(), v, &tag, &result) == napi_ok && result;
}

Napi::Function AbortToken::Init(Napi::Env env) {
  return DefineClass(env, "AbortToken", {InstanceMethod<&AbortToken::Abort>("abort")});
}

AbortToken::AbortToken(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AbortToken>(info) {
  tag_object(info.This(), kAbortTokenTag);
}

Napi::Value AbortToken::Abort(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

std::shared_ptr<std::atomic<bool>> get_abort_flag(const Napi::Value& v) {
  if (has_tag(v, kAbortTokenTag)) return AbortToken::Unwrap(v.As<Napi::Object>())->flag();
  if (!v.IsUndefined() && !v.IsNull()) throw_type(v.Env(), "The \"token\" argument must be an AbortToken");
  return std::make_shared<std::atomic<bool>>(false);
}

StatusWorker::StatusWorker(Napi::Env env, std::function<Status(const std::atomic<bool>*)> work,
                           const std::vector<Napi::Value>& keep, std::vector<std::shared_ptr<MappedFile>> pins,
                           std::shared_ptr<std::atomic<bool>> cancel)
    : Napi::AsyncWorker(env),
      work_(std::move(work)),
      pins_(std::move(pins)),
      cancel_(std::move(cancel)),
      deferred_(Napi::Promise::Deferred::New(env)) {
  for (const auto& v : keep)
    if (v.IsObject()) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
}

Napi::Promise StatusWorker::Start(Napi::Env env, std::function<Status(const std::atomic<bool>*)> work,
                                  const std::vector<Napi::Value>& keep, std::vector<std::shared_ptr<MappedFile>> pins,
                                  std::shared_ptr<std::atomic<bool>> cancel) {
  auto* w = new StatusWorker(env, std::move(work), keep, std::move(pins), std::move(cancel));
  Napi::Promise p = w->deferred_.Promise();
  w->Queue();
  return p;
}

void StatusWorker::Execute() {
  try {
    status_ = work_(cancel_.get());
  } catch (const std::bad_alloc&) {
    status_ = Status(Code::kOutOfMemory, "out of memory in a native kernel");
  } catch (...) {
    status_ = Status(Code::kInternal, "unexpected exception in a native kernel");
  }
}

void StatusWorker::OnOK() {
  Napi::HandleScope scope(Env());
  pins_.clear();
  if (status_.is_ok()) deferred_.Resolve(Env().Undefined());
  else deferred_.Reject(status_to_error(Env(), status_));
}

void StatusWorker::OnError(const Napi::Error& e) { deferred_.Reject(e.Value()); }

}  // namespace ws::binding
