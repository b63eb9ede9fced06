// SPDX-License-Identifier: MIT
#include "file.h"

#include <new>

#include "common.h"

namespace ws::binding {

namespace {

struct OpenOptions {
  std::string path;
  IoMode mode = IoMode::kAuto;
  StLimits limits;
};

OpenOptions read_open_options(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw_type(env, "The \"path\" argument must be a string");
  OpenOptions o;
  o.path = info[0].As<Napi::String>().Utf8Value();
  if (info[1].IsString()) {
    const std::string io = info[1].As<Napi::String>().Utf8Value();
    if (io == "mmap") o.mode = IoMode::kMmap;
    else if (io == "pread") o.mode = IoMode::kPread;
    else if (io == "auto") o.mode = IoMode::kAuto;
    else throw_range(env, "The \"io\" option must be 'auto', 'mmap' or 'pread'");
  }
  if (info[2].IsNumber()) o.limits.max_tensors = get_size(info[2], "maxTensors");
  if (info[3].IsNumber()) o.limits.max_rank = get_size(info[3], "maxRank");
  return o;
}

Status do_open(const OpenOptions& o, OpenedFile* out) {
  try {
    WS_RETURN_IF_ERROR(MappedFile::open(o.path, o.mode, &out->file));
    const MappedFile& f = *out->file;
    uint8_t prefix[8] = {0};
    const size_t plen = f.size() < 8 ? static_cast<size_t>(f.size()) : 8;
    WS_RETURN_IF_ERROR(f.read(0, prefix, plen));
    uint64_t n = 0;
    Status s = st_read_prefix(prefix, f.size(), &n);
    if (s.is_ok()) {
      std::vector<uint8_t> own;
      const uint8_t* header = nullptr;
      if (f.data() != nullptr) {
        header = f.data() + 8;
      } else {
        own.resize(static_cast<size_t>(n));
        s = f.read(8, own.data(), own.size());
        header = own.data();
      }
      if (s.is_ok()) s = st_parse_header(header, n, f.size(), o.limits, &out->header);
    }
    if (!s.is_ok()) {
      s.with("path", o.path);
      return s;
    }
    return Status::ok();
  } catch (const std::bad_alloc&) {
    return Status(Code::kOutOfMemory, "out of memory while reading the header of '" + o.path + "'");
  }
}

Napi::Object make_native_file(Napi::Env env, OpenedFile* opened) {
  return addon_data(env).native_file_ctor.New({Napi::External<OpenedFile>::New(env, opened)});
}

class OpenWorker : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, OpenOptions o)
      : Napi::AsyncWorker(env), options_(std::move(o)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      status_ = do_open(options_, &opened_);
    } catch (...) {
      status_ = Status(Code::kInternal, "unexpected exception while opening '" + options_.path + "'");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!status_.is_ok()) {
      deferred_.Reject(status_to_error(env, status_));
      return;
    }
    try {
      deferred_.Resolve(make_native_file(env, &opened_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  OpenOptions options_;
  OpenedFile opened_;
  Status status_;
  Napi::Promise::Deferred deferred_;
};

void finalize_view(Napi::Env, void*, std::shared_ptr<MappedFile>* hint) { delete hint; }

}  // namespace

Napi::Function NativeFile::Init(Napi::Env env) {
  return DefineClass(env, "NativeFile",
                     {InstanceMethod<&NativeFile::Info>("info"), InstanceMethod<&NativeFile::View>("view"),
                      InstanceMethod<&NativeFile::ReadInto>("readInto"), InstanceMethod<&NativeFile::Check>("check"),
                      InstanceMethod<&NativeFile::Close>("close"), InstanceAccessor<&NativeFile::Closed>("closed")});
}

NativeFile::NativeFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeFile>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) throw_type(info.Env(), "NativeFile cannot be constructed directly");
  tag_object(info.This(), kNativeFileTag);
  OpenedFile* opened = info[0].As<Napi::External<OpenedFile>>().Data();
  file_ = std::move(opened->file);
  header_ = std::move(opened->header);
}

void NativeFile::ensure_open(Napi::Env env) {
  if (!file_) throw_status(env, Status(Code::kHandleClosed, "the weight file is closed"));
}

const StTensorInfo& NativeFile::tensor_at(const Napi::Value& index) {
  ensure_open(index.Env());
  const size_t i = get_size(index, "index");
  if (i >= header_.tensors.size()) throw_range(index.Env(), "The \"index\" argument is out of range");
  return header_.tensors[i];
}

Napi::Value NativeFile::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensure_open(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("headerSize", Napi::Number::New(env, static_cast<double>(header_.header_size)));
  out.Set("fileSize", Napi::Number::New(env, static_cast<double>(file_->size())));
  out.Set("mapped", Napi::Boolean::New(env, file_->mapped()));
  if (header_.has_metadata) {
    Napi::Array md = Napi::Array::New(env, header_.metadata.size());
    for (size_t i = 0; i < header_.metadata.size(); ++i) {
      Napi::Array kv = Napi::Array::New(env, 2);
      kv.Set(0u, Napi::String::New(env, header_.metadata[i].first));
      kv.Set(1u, Napi::String::New(env, header_.metadata[i].second));
      md.Set(static_cast<uint32_t>(i), kv);
    }
    out.Set("metadata", md);
  } else {
    out.Set("metadata", env.Null());
  }
  // The tensor table travels packed (names, then typed arrays of numbers) rather than as one object per
  // tensor: setting properties through N-API costs about a microsecond each, which dominated open() for
  // headers with thousands of tensors.
  const size_t count = header_.tensors.size();
  size_t total_rank = 0;
  for (const auto& t : header_.tensors) total_rank += t.shape.size();
  Napi::Array names = Napi::Array::New(env, count);
  Napi::Uint8Array dtypes = Napi::Uint8Array::New(env, count);
  Napi::Uint32Array ranks = Napi::Uint32Array::New(env, count);
  Napi::Float64Array dims = Napi::Float64Array::New(env, total_rank);
  Napi::Float64Array offsets = Napi::Float64Array::New(env, 2 * count);
  size_t k = 0;
  for (size_t i = 0; i < count; ++i) {
    const StTensorInfo& t = header_.tensors[i];
    names.Set(static_cast<uint32_t>(i), Napi::String::New(env, t.name));
    dtypes[i] = static_cast<uint8_t>(t.dtype);
    ranks[i] = static_cast<uint32_t>(t.shape.size());
    for (uint64_t d : t.shape) dims[k++] = static_cast<double>(d);
    offsets[2 * i] = static_cast<double>(t.begin);
    offsets[2 * i + 1] = static_cast<double>(t.end);
  }
  Napi::Object ts = Napi::Object::New(env);
  ts.Set("names", names);
  ts.Set("dtypes", dtypes);
  ts.Set("ranks", ranks);
  ts.Set("dims", dims);
  ts.Set("offsets", offsets);
  out.Set("tensors", ts);
  return out;
}

// view(index) -> [ArrayBuffer, zeroCopy]: an external ArrayBuffer over the tensor's bytes in the mapping
// (zeroCopy true), else a copy: in pread mode, for a read-only fallback mapping, and in runtimes that refuse
// external buffers. Called once per tensor; lib/ caches the result so no two ArrayBuffers cover the same bytes.
Napi::Value NativeFile::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const StTensorInfo& t = tensor_at(info[0]);
  Status s = file_->check_unchanged();
  if (!s.is_ok()) throw_status(env, s);
  const size_t len = static_cast<size_t>(t.end - t.begin);
  Napi::Array out = Napi::Array::New(env, 2);
  if (len == 0) {
    out.Set(0u, Napi::ArrayBuffer::New(env, 0));
    out.Set(1u, Napi::Boolean::New(env, false));
    return out;
  }
  const uint64_t offset = header_.data_start() + t.begin;
  if (file_->mapped() && file_->writable()) {
    auto* hint = new std::shared_ptr<MappedFile>(file_);
    napi_value ab;
    void* data = const_cast<uint8_t*>(file_->data() + offset);
    const napi_status st = napi_create_external_arraybuffer(
        env, data, len,
        [](napi_env e, void* d, void* h) { finalize_view(Napi::Env(e), d, static_cast<std::shared_ptr<MappedFile>*>(h)); },
        hint, &ab);
    if (st == napi_ok) {
      out.Set(0u, Napi::Value(env, ab));
      out.Set(1u, Napi::Boolean::New(env, true));
      return out;
    }
    delete hint;  // runtimes that refuse external buffers (Electron's sandbox) get a copy
  }
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, len);
  s = file_->read(offset, ab.Data(), len);
  if (!s.is_ok()) throw_status(env, s);
  out.Set(0u, ab);
  out.Set(1u, Napi::Boolean::New(env, false));
  return out;
}

// readInto(index, byteOffset, target): copies part of a tensor's bytes into target (a TypedArray), for
// streaming a tensor in chunks without creating a view. Returns the bytes copied.
Napi::Value NativeFile::ReadInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const StTensorInfo& t = tensor_at(info[0]);
  const size_t byte_offset = get_size(info[1], "byteOffset");
  Bytes target = get_bytes(info[2], "target");
  const uint64_t len = t.end - t.begin;
  if (byte_offset > len) throw_range(env, "The \"byteOffset\" argument is past the end of the tensor");
  const size_t n = static_cast<size_t>(len - byte_offset < target.length ? len - byte_offset : target.length);
  Status s = file_->check_unchanged();
  if (s.is_ok()) s = file_->read(header_.data_start() + t.begin + byte_offset, target.data, n);
  if (!s.is_ok()) throw_status(env, s);
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value NativeFile::Check(const Napi::CallbackInfo& info) {
  ensure_open(info.Env());
  Status s = file_->check_unchanged();
  if (!s.is_ok()) throw_status(info.Env(), s);
  return info.Env().Undefined();
}

// Drops this handle's reference; views and running kernels keep theirs, so the mapping goes away with the last.
Napi::Value NativeFile::Close(const Napi::CallbackInfo& info) {
  file_.reset();
  header_ = StHeader();
  return info.Env().Undefined();
}

Napi::Value NativeFile::Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !file_); }

Napi::Value OpenFileSync(const Napi::CallbackInfo& info) {
  OpenOptions o = read_open_options(info);
  OpenedFile opened;
  Status s = do_open(o, &opened);
  if (!s.is_ok()) throw_status(info.Env(), s);
  return make_native_file(info.Env(), &opened);
}

Napi::Value OpenFileAsync(const Napi::CallbackInfo& info) {
  OpenOptions o = read_open_options(info);
  auto* w = new OpenWorker(info.Env(), std::move(o));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value DetachBuffer(const Napi::CallbackInfo& info) {
  if (!info[0].IsArrayBuffer()) throw_type(info.Env(), "The \"buffer\" argument must be an ArrayBuffer");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (!ab.IsDetached()) ab.Detach();
  return info.Env().Undefined();
}

std::vector<std::shared_ptr<MappedFile>> pin_owners(const Napi::Value& owners) {
  std::vector<std::shared_ptr<MappedFile>> out;
  if (!owners.IsArray()) return out;
  Napi::Array arr = owners.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!has_tag(v, kNativeFileTag)) throw_type(owners.Env(), "owners must be NativeFile handles");
    auto f = NativeFile::Unwrap(v.As<Napi::Object>())->file();
    if (!f) throw_status(owners.Env(), Status(Code::kHandleClosed, "the weight file is closed"));
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ws::binding
