// SPDX-License-Identifier: MIT
#include "file.h"

#include <cstring>
#include <new>

#include "common.h"
#include "weightsmith/ggml-types.h"

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

Status open_safetensors(const OpenOptions& o, OpenedFile* out) {
  const MappedFile& f = *out->file;
  uint8_t prefix[8] = {0};
  const size_t plen = f.size() < 8 ? static_cast<size_t>(f.size()) : 8;
  WS_RETURN_IF_ERROR(f.read(0, prefix, plen));
  uint64_t n = 0;
  WS_RETURN_IF_ERROR(st_read_prefix(prefix, f.size(), &n));
  std::vector<uint8_t> own;
  const uint8_t* header = nullptr;
  if (f.data() != nullptr) {
    header = f.data() + 8;
  } else {
    own.resize(static_cast<size_t>(n));
    WS_RETURN_IF_ERROR(f.read(8, own.data(), own.size()));
    header = own.data();
  }
  WS_RETURN_IF_ERROR(st_parse_header(header, n, f.size(), o.limits, &out->st));
  out->header_size = n;
  out->tensors.reserve(out->st.tensors.size());
  for (auto& t : out->st.tensors) {
    TableEntry e;
    e.name = std::move(t.name);
    e.dtype = t.dtype;
    e.shape = std::move(t.shape);
    e.offset = out->st.data_start() + t.begin;
    e.nbytes = t.end - t.begin;
    out->tensors.push_back(std::move(e));
  }
  out->st.tensors.clear();
  return Status::ok();
}

Status open_gguf(const OpenOptions& o, OpenedFile* out) {
  WS_RETURN_IF_ERROR(gguf_parse(*out->file, &out->gguf_file));
  out->gguf = true;
  out->header_size = out->gguf_file.data_start;
  if (out->gguf_file.tensors.size() > o.limits.max_tensors) {
    Status s(Code::kLimitExceeded, "the file declares more than " + std::to_string(o.limits.max_tensors) + " tensors (maxTensors)");
    s.with("limit", o.limits.max_tensors);
    return s;
  }
  out->tensors.reserve(out->gguf_file.tensors.size());
  for (auto& t : out->gguf_file.tensors) {
    const GgmlTypeInfo* gt = ggml_type_info(t.type);
    TableEntry e;
    e.name = std::move(t.name);
    e.dtype = gt->plain;
    e.ggml_type = t.type;
    for (uint32_t d = t.n_dims; d > 0; --d) e.shape.push_back(t.ne[d - 1]);  // ggml order reversed
    e.offset = out->gguf_file.data_start + t.offset;
    e.nbytes = t.nbytes;
    out->tensors.push_back(std::move(e));
  }
  out->gguf_file.tensors.clear();
  return Status::ok();
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

Status do_open(const OpenOptions& o, OpenedFile* out) {
  try {
    WS_RETURN_IF_ERROR(MappedFile::open(o.path, o.mode, &out->file));
    uint8_t magic[4] = {0};
    const bool has4 = out->file->size() >= 4;
    if (has4) WS_RETURN_IF_ERROR(out->file->read(0, magic, 4));
    // The extension decides; other names are sniffed by the GGUF magic.
    const bool gguf = ends_with(o.path, ".gguf") ||
                      (!ends_with(o.path, ".safetensors") && has4 && std::memcmp(magic, "GGUF", 4) == 0);
    Status s = gguf ? open_gguf(o, out) : open_safetensors(o, out);
    if (!s.is_ok()) {
      bool has_path = false;
      for (const auto& f : s.fields()) has_path = has_path || f.key == "path";
      if (!has_path) s.with("path", o.path);
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
  table_ = std::move(*opened);
}

void NativeFile::ensure_open(Napi::Env env) {
  if (!file_) throw_status(env, Status(Code::kHandleClosed, "the weight file is closed"));
}

const TableEntry& NativeFile::tensor_at(const Napi::Value& index) {
  ensure_open(index.Env());
  const size_t i = get_size(index, "index");
  if (i >= table_.tensors.size()) throw_range(index.Env(), "The \"index\" argument is out of range");
  return table_.tensors[i];
}

Napi::Value GgufValueToJs(Napi::Env env, const GgufValue& v);

Napi::Value NativeFile::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensure_open(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("format", Napi::String::New(env, table_.gguf ? "gguf" : "safetensors"));
  out.Set("headerSize", Napi::Number::New(env, static_cast<double>(table_.header_size)));
  out.Set("fileSize", Napi::Number::New(env, static_cast<double>(file_->size())));
  out.Set("mapped", Napi::Boolean::New(env, file_->mapped() && file_->writable()));
  if (table_.gguf) {
    // GGUF: [key, type name, value] triples, in file order.
    const auto& kvs = table_.gguf_file.kvs;
    Napi::Array md = Napi::Array::New(env, kvs.size());
    for (size_t i = 0; i < kvs.size(); ++i) {
      Napi::Array kv = Napi::Array::New(env, 3);
      kv.Set(0u, Napi::String::New(env, kvs[i].key));
      kv.Set(1u, Napi::Number::New(env, static_cast<double>(kvs[i].value.type)));
      kv.Set(2u, GgufValueToJs(env, kvs[i].value));
      md.Set(static_cast<uint32_t>(i), kv);
    }
    out.Set("metadata", md);
    out.Set("version", Napi::Number::New(env, table_.gguf_file.version));
    out.Set("alignment", Napi::Number::New(env, static_cast<double>(table_.gguf_file.alignment)));
  } else if (table_.st.has_metadata) {
    Napi::Array md = Napi::Array::New(env, table_.st.metadata.size());
    for (size_t i = 0; i < table_.st.metadata.size(); ++i) {
      Napi::Array kv = Napi::Array::New(env, 2);
      kv.Set(0u, Napi::String::New(env, table_.st.metadata[i].first));
      kv.Set(1u, Napi::String::New(env, table_.st.metadata[i].second));
      md.Set(static_cast<uint32_t>(i), kv);
    }
    out.Set("metadata", md);
  } else {
    out.Set("metadata", env.Null());
  }
  // The tensor table travels packed (names, then typed arrays of numbers) rather than as one object per
  // tensor: setting properties through N-API costs about a microsecond each, which dominated open() for
  // headers with thousands of tensors.
  const size_t count = table_.tensors.size();
  size_t total_rank = 0;
  for (const auto& t : table_.tensors) total_rank += t.shape.size();
  Napi::Array names = Napi::Array::New(env, count);
  Napi::Uint8Array dtypes = Napi::Uint8Array::New(env, count);
  Napi::Uint8Array ggml = Napi::Uint8Array::New(env, count);
  Napi::Uint32Array ranks = Napi::Uint32Array::New(env, count);
  Napi::Float64Array dims = Napi::Float64Array::New(env, total_rank);
  Napi::Float64Array offsets = Napi::Float64Array::New(env, 2 * count);
  size_t k = 0;
  for (size_t i = 0; i < count; ++i) {
    const TableEntry& t = table_.tensors[i];
    names.Set(static_cast<uint32_t>(i), Napi::String::New(env, t.name));
    dtypes[i] = static_cast<uint8_t>(t.dtype);
    ggml[i] = static_cast<uint8_t>(t.ggml_type);
    ranks[i] = static_cast<uint32_t>(t.shape.size());
    for (uint64_t d : t.shape) dims[k++] = static_cast<double>(d);
    offsets[2 * i] = static_cast<double>(t.offset);
    offsets[2 * i + 1] = static_cast<double>(t.nbytes);
  }
  Napi::Object ts = Napi::Object::New(env);
  ts.Set("names", names);
  ts.Set("dtypes", dtypes);
  ts.Set("ggmlTypes", ggml);
  ts.Set("ranks", ranks);
  ts.Set("dims", dims);
  ts.Set("offsets", offsets);
  out.Set("tensors", ts);
  return out;
}

// A GGUF metadata value as JS: numbers (u64/i64 as BigInt), strings, booleans; arrays as TypedArrays
// (copies), string[] or boolean[].
Napi::Value GgufValueToJs(Napi::Env env, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kU8: case GgufType::kU16: case GgufType::kU32: return Napi::Number::New(env, static_cast<double>(v.u));
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: return Napi::Number::New(env, static_cast<double>(v.i));
    case GgufType::kF32: case GgufType::kF64: return Napi::Number::New(env, v.f);
    case GgufType::kBool: return Napi::Boolean::New(env, v.u != 0);
    case GgufType::kU64: return Napi::BigInt::New(env, v.u);
    case GgufType::kI64: return Napi::BigInt::New(env, v.i);
    case GgufType::kString: return Napi::String::New(env, v.s);
    default: break;
  }
  // Arrays
  Napi::Object arr = Napi::Object::New(env);
  arr.Set("elementType", Napi::Number::New(env, static_cast<double>(v.elem_type)));
  if (v.elem_type == GgufType::kString) {
    Napi::Array a = Napi::Array::New(env, v.strings.size());
    for (size_t i = 0; i < v.strings.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, v.strings[i]));
    arr.Set("values", a);
    return arr;
  }
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, v.raw.size());
  if (!v.raw.empty()) std::memcpy(ab.Data(), v.raw.data(), v.raw.size());
  arr.Set("bytes", ab);
  arr.Set("count", Napi::Number::New(env, static_cast<double>(v.count)));
  return arr;
}

// view(index) -> [ArrayBuffer, zeroCopy]: an external ArrayBuffer over the tensor's bytes in the mapping
// (zeroCopy true), else a copy: in pread mode, for a read-only fallback mapping, and in runtimes that refuse
// external buffers. Called once per tensor; lib/ caches the result so no two ArrayBuffers cover the same bytes.
Napi::Value NativeFile::View(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TableEntry& t = tensor_at(info[0]);
  Status s = file_->check_unchanged();
  if (!s.is_ok()) throw_status(env, s);
  const size_t len = static_cast<size_t>(t.nbytes);
  Napi::Array out = Napi::Array::New(env, 2);
  if (len == 0) {
    out.Set(0u, Napi::ArrayBuffer::New(env, 0));
    out.Set(1u, Napi::Boolean::New(env, false));
    return out;
  }
  const uint64_t offset = t.offset;
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
  const TableEntry& t = tensor_at(info[0]);
  const size_t byte_offset = get_size(info[1], "byteOffset");
  Bytes target = get_bytes(info[2], "target");
  const uint64_t len = t.nbytes;
  if (byte_offset > len) throw_range(env, "The \"byteOffset\" argument is past the end of the tensor");
  const size_t n = static_cast<size_t>(len - byte_offset < target.length ? len - byte_offset : target.length);
  Status s = file_->check_unchanged();
  if (s.is_ok()) s = file_->read(t.offset + byte_offset, target.data, n);
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
  table_ = OpenedFile();
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
