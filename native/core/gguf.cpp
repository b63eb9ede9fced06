// SPDX-License-Identifier: MIT
#include "weightsmith/gguf.h"

#include <cstring>
#include <functional>
#include <unordered_set>

#include "weightsmith/checked.h"
#include "weightsmith/ggml-types.h"
#include "weightsmith/utf8.h"

namespace ws {

namespace {

// Byte source with a cursor: a mapped/pread file or a memory image.
class Cursor {
 public:
  Cursor(std::function<Status(uint64_t, void*, size_t)> read, uint64_t size) : read_(std::move(read)), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  uint64_t size() const { return size_; }

  Status bytes(void* dst, uint64_t n, const char* what) {
    if (n > remaining()) {
      Status s(Code::kGgufTruncated, std::string("file ends inside ") + what + " at byte " + std::to_string(pos_));
      s.with("offset", pos_);
      return s;
    }
    WS_RETURN_IF_ERROR(read_(pos_, dst, static_cast<size_t>(n)));
    pos_ += n;
    return Status::ok();
  }
  template <typename T>
  Status scalar(T* out, const char* what) {
    uint8_t b[sizeof(T)];
    WS_RETURN_IF_ERROR(bytes(b, sizeof(T), what));
    T v{};
    std::memcpy(&v, b, sizeof(T));  // the file is little-endian, as is every platform we build for
    *out = v;
    return Status::ok();
  }

 private:
  std::function<Status(uint64_t, void*, size_t)> read_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

Status err(Code code, const std::string& msg, uint64_t offset) {
  Status s(code, msg);
  s.with("offset", offset);
  return s;
}

// gguf_string: u64 length + bytes. max_len bounds it (key, name or value limits).
Status read_string(Cursor& c, std::string* out, const char* what) {
  const uint64_t at = c.pos();
  uint64_t len = 0;
  WS_RETURN_IF_ERROR(c.scalar(&len, what));
  if (len > kGgufMaxString)
    return err(Code::kGgufString, std::string(what) + ": string length " + std::to_string(len) + " exceeds 2^30", at);
  if (len > c.remaining())
    return err(Code::kGgufString, std::string(what) + ": string length " + std::to_string(len) + " exceeds the " +
                                      std::to_string(c.remaining()) + " bytes left in the file", at);
  out->resize(static_cast<size_t>(len));
  return c.bytes(out->data(), len, what);
}

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    default: return 0;
  }
}

Status read_scalar_value(Cursor& c, GgufType t, GgufValue* v, const std::string& key) {
  uint8_t b[8] = {0};
  const size_t n = scalar_size(t);
  WS_RETURN_IF_ERROR(c.bytes(b, n, "a metadata value"));
  switch (t) {
    case GgufType::kU8: v->u = b[0]; break;
    case GgufType::kI8: v->i = static_cast<int8_t>(b[0]); break;
    case GgufType::kBool:
      if (b[0] > 1) return err(Code::kGgufType, "metadata '" + key + "': bool value " + std::to_string(b[0]) + " is not 0 or 1", c.pos() - 1);
      v->u = b[0];
      break;
    case GgufType::kU16: { uint16_t x; std::memcpy(&x, b, 2); v->u = x; break; }
    case GgufType::kI16: { int16_t x; std::memcpy(&x, b, 2); v->i = x; break; }
    case GgufType::kU32: { uint32_t x; std::memcpy(&x, b, 4); v->u = x; break; }
    case GgufType::kI32: { int32_t x; std::memcpy(&x, b, 4); v->i = x; break; }
    case GgufType::kF32: { float x; std::memcpy(&x, b, 4); v->f = x; break; }
    case GgufType::kU64: { uint64_t x; std::memcpy(&x, b, 8); v->u = x; break; }
    case GgufType::kI64: { int64_t x; std::memcpy(&x, b, 8); v->i = x; break; }
    case GgufType::kF64: { double x; std::memcpy(&x, b, 8); v->f = x; break; }
    default: break;
  }
  return Status::ok();
}

Status read_value(Cursor& c, GgufValue* v, const std::string& key) {
  const uint64_t type_at = c.pos();
  uint32_t type = 0;
  WS_RETURN_IF_ERROR(c.scalar(&type, "a metadata value type"));
  if (type >= static_cast<uint32_t>(GgufType::kCount))
    return err(Code::kGgufType, "metadata '" + key + "' has invalid value type " + std::to_string(type), type_at);
  v->type = static_cast<GgufType>(type);
  if (v->type == GgufType::kString) return read_string(c, &v->s, "a metadata string");
  if (v->type != GgufType::kArray) return read_scalar_value(c, v->type, v, key);

  const uint64_t elem_at = c.pos();
  uint32_t elem = 0;
  WS_RETURN_IF_ERROR(c.scalar(&elem, "an array element type"));
  if (elem >= static_cast<uint32_t>(GgufType::kCount))
    return err(Code::kGgufType, "metadata '" + key + "': array element type " + std::to_string(elem) + " is invalid", elem_at);
  if (elem == static_cast<uint32_t>(GgufType::kArray))
    return err(Code::kGgufType, "metadata '" + key + "': arrays of arrays are not supported (ggml refuses them)", elem_at);
  v->elem_type = static_cast<GgufType>(elem);
  const uint64_t count_at = c.pos();
  WS_RETURN_IF_ERROR(c.scalar(&v->count, "an array length"));
  if (v->count > kGgufMaxArray)
    return err(Code::kGgufArray, "metadata '" + key + "': array of " + std::to_string(v->count) + " elements exceeds 2^30", count_at);
  if (v->elem_type == GgufType::kString) {
    // Each string takes at least its 8-byte length: bound the count before reserving anything.
    uint64_t min_bytes = 0;
    if (!checked_mul(v->count, 8, &min_bytes) || min_bytes > c.remaining())
      return err(Code::kGgufArray, "metadata '" + key + "': " + std::to_string(v->count) + " strings cannot fit in the " +
                                       std::to_string(c.remaining()) + " bytes left", count_at);
    v->strings.resize(static_cast<size_t>(v->count));
    for (auto& s : v->strings) WS_RETURN_IF_ERROR(read_string(c, &s, "an array string"));
    return Status::ok();
  }
  uint64_t nbytes = 0;
  if (!checked_mul(v->count, scalar_size(v->elem_type), &nbytes) || nbytes > c.remaining())
    return err(Code::kGgufArray, "metadata '" + key + "': array of " + std::to_string(v->count) + " elements runs past the end of the file", count_at);
  v->raw.resize(static_cast<size_t>(nbytes));
  WS_RETURN_IF_ERROR(c.bytes(v->raw.data(), nbytes, "an array"));
  if (v->elem_type == GgufType::kBool) {
    for (uint8_t b : v->raw)
      if (b > 1) return err(Code::kGgufType, "metadata '" + key + "': bool array holds a value other than 0 or 1", count_at);
  }
  return Status::ok();
}

bool key_chars_ok(const std::string& k) {
  for (unsigned char ch : k)
    if (ch < 0x20 || ch > 0x7e) return false;
  return true;
}

Status parse(Cursor& c, GgufFile* out) {
  *out = GgufFile();
  uint8_t magic[4];
  if (c.size() < 4) return err(Code::kGgufMagic, "file of " + std::to_string(c.size()) + " bytes is too small to be a GGUF file", 0);
  WS_RETURN_IF_ERROR(c.bytes(magic, 4, "the magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0) return err(Code::kGgufMagic, "not a GGUF file: the magic is not 'GGUF'", 0);
  uint32_t version = 0;
  WS_RETURN_IF_ERROR(c.scalar(&version, "the version"));
  if (version != 0 && (version & 0xFFFFu) == 0)
    return err(Code::kGgufEndianness, "GGUF version " + std::to_string(version) +
                                          " reads as byte-swapped: big-endian GGUF files are not supported", 4);
  if (version == 1) return err(Code::kGgufVersion, "GGUF version 1 is no longer supported (use a current converter)", 4);
  if (version != 2 && version != 3)
    return err(Code::kGgufVersion, "unsupported GGUF version " + std::to_string(version) + " (this reader supports 2 and 3)", 4);
  out->version = version;
  uint64_t n_tensors = 0, n_kv = 0;
  WS_RETURN_IF_ERROR(c.scalar(&n_tensors, "the tensor count"));
  WS_RETURN_IF_ERROR(c.scalar(&n_kv, "the metadata count"));
  // The smallest possible entries: a KV is a key length (8) + 1 key byte + a type (4) + a 1-byte value; a
  // tensor info is a name length (8) + 1 name byte + n_dims (4) + type (4) + offset (8).
  uint64_t need_kv = 0, need_t = 0, need = 0;
  if (n_tensors > static_cast<uint64_t>(INT64_MAX) || n_kv > static_cast<uint64_t>(INT64_MAX) ||
      !checked_mul(n_kv, 14, &need_kv) || !checked_mul(n_tensors, 25, &need_t) || !checked_add(need_kv, need_t, &need) ||
      need > c.remaining()) {
    Status s(Code::kGgufCount, "the header declares " + std::to_string(n_tensors) + " tensors and " + std::to_string(n_kv) +
                                   " metadata entries, more than the " + std::to_string(c.remaining()) + " remaining bytes can hold");
    s.with("offset", uint64_t{8});
    return s;
  }

  std::unordered_set<std::string> keys;
  out->kvs.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    GgufKV kv;
    const uint64_t at = c.pos();
    WS_RETURN_IF_ERROR(read_string(c, &kv.key, "a metadata key"));
    if (kv.key.empty()) return err(Code::kGgufName, "metadata key " + std::to_string(k) + " is empty", at);
    if (kv.key.size() > kGgufMaxKeyLength)
      return err(Code::kGgufName, "metadata key of " + std::to_string(kv.key.size()) + " bytes exceeds 65,535", at);
    if (!key_chars_ok(kv.key)) return err(Code::kGgufName, "metadata key " + std::to_string(k) + " is not printable ASCII", at);
    if (!keys.insert(kv.key).second) return err(Code::kGgufDuplicate, "duplicate metadata key '" + kv.key + "'", at);
    WS_RETURN_IF_ERROR(read_value(c, &kv.value, kv.key));
    out->kvs.push_back(std::move(kv));
  }
  for (const auto& kv : out->kvs) {
    if (kv.key != "general.alignment") continue;
    if (kv.value.type != GgufType::kU32)
      return err(Code::kGgufAlignment, "general.alignment must be a UINT32 value", 0);
    const uint64_t a = kv.value.u;
    if (a == 0 || (a & (a - 1)) != 0 || a % 8 != 0)
      return err(Code::kGgufAlignment, "general.alignment " + std::to_string(a) + " is not a power of two and a multiple of 8", 0);
    out->alignment = a;
  }

  std::unordered_set<std::string> names;
  out->tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo ti;
    const uint64_t at = c.pos();
    WS_RETURN_IF_ERROR(read_string(c, &ti.name, "a tensor name"));
    size_t bad = 0;
    if (!utf8_valid(reinterpret_cast<const uint8_t*>(ti.name.data()), ti.name.size(), &bad))
      return err(Code::kGgufName, "tensor name " + std::to_string(t) + " is not valid UTF-8", at);
    if (ti.name.size() > kGgufMaxNameLength)
      return err(Code::kGgufName, "tensor name '" + ti.name.substr(0, 80) + "' is " + std::to_string(ti.name.size()) +
                                      " bytes; ggml allows at most 63", at);
    if (!names.insert(ti.name).second) return err(Code::kGgufDuplicate, "duplicate tensor name '" + ti.name + "'", at);
    const auto tensor_err = [&](Code code, const std::string& what) {
      Status s(code, "tensor '" + ti.name + "': " + what);
      s.with("tensor", ti.name).with("offset", at);
      return s;
    };
    WS_RETURN_IF_ERROR(c.scalar(&ti.n_dims, "a tensor's dimension count"));
    if (ti.n_dims > 4) return tensor_err(Code::kGgufShape, std::to_string(ti.n_dims) + " dimensions (ggml allows at most 4)");
    for (uint32_t d = 0; d < ti.n_dims; ++d) {
      WS_RETURN_IF_ERROR(c.scalar(&ti.ne[d], "a tensor dimension"));
      if (ti.ne[d] > static_cast<uint64_t>(INT64_MAX))
        return tensor_err(Code::kGgufShape, "dimension " + std::to_string(d) + " is negative");
    }
    uint64_t numel = 0;
    if (!checked_numel(ti.ne, 4, &numel) || numel > static_cast<uint64_t>(INT64_MAX))
      return tensor_err(Code::kGgufShape, "element count overflows int64");
    WS_RETURN_IF_ERROR(c.scalar(&ti.type, "a tensor type"));
    const GgmlTypeInfo* gt = ggml_type_info(ti.type);
    if (gt == nullptr) return tensor_err(Code::kGgufTensorType, "ggml type " + std::to_string(ti.type) + " is invalid or removed");
    if (ti.ne[0] % gt->block_size != 0)
      return tensor_err(Code::kGgufTensorType, "row of " + std::to_string(ti.ne[0]) + " elements is not a multiple of the " +
                                                   gt->name + " block size " + std::to_string(gt->block_size));
    if (!checked_mul(numel / gt->block_size, gt->type_size, &ti.nbytes) || ti.nbytes > static_cast<uint64_t>(SIZE_MAX))
      return tensor_err(Code::kGgufOverflow, "byte size overflows");
    WS_RETURN_IF_ERROR(c.scalar(&ti.offset, "a tensor offset"));
    out->tensors.push_back(std::move(ti));
  }

  // Data section: aligned after the table; tensor i at the running sum of the padded sizes before it.
  const uint64_t a = out->alignment;
  uint64_t start = c.pos();
  if (start % a != 0) start += a - start % a;
  out->data_start = start;
  uint64_t expected = 0;
  for (const auto& ti : out->tensors) {
    if (ti.offset != expected) {
      Status s(Code::kGgufOffset, "tensor '" + ti.name + "' is at data offset " + std::to_string(ti.offset) + ", expected " +
                                      std::to_string(expected) + " (ggml requires sequential, aligned tensor data)");
      s.with("tensor", ti.name).with("offset", ti.offset);
      return s;
    }
    // Overflow is checked before padding: padding a size near 2^64 must not wrap.
    uint64_t padded = 0;
    if (!checked_add(ti.nbytes, (a - ti.nbytes % a) % a, &padded) || !checked_add(expected, padded, &expected)) {
      Status s(Code::kGgufOverflow, "tensor '" + ti.name + "': the data section size overflows");
      s.with("tensor", ti.name);
      return s;
    }
  }
  for (const auto& ti : out->tensors) {
    uint64_t end = 0;
    if (!checked_add(start, ti.offset, &end) || !checked_add(end, ti.nbytes, &end) || end > c.size()) {
      Status s(Code::kGgufTruncated, "tensor '" + ti.name + "' data runs past the end of the file (needs " +
                                         std::to_string(end) + " bytes, the file has " + std::to_string(c.size()) + ")");
      s.with("tensor", ti.name).with("declared", end).with("size", c.size());
      return s;
    }
  }
  return Status::ok();
}

}  // namespace

Status gguf_parse(const MappedFile& file, GgufFile* out) {
  Cursor c([&](uint64_t off, void* dst, size_t n) { return dst ? file.read(off, dst, n) : Status::ok(); }, file.size());
  Status s = parse(c, out);
  if (!s.is_ok()) s.with("path", file.path());
  return s;
}

Status gguf_parse_bytes(const uint8_t* data, uint64_t size, GgufFile* out) {
  Cursor c(
      [&](uint64_t off, void* dst, size_t n) {
        if (dst && n) std::memcpy(dst, data + off, n);
        return Status::ok();
      },
      size);
  return parse(c, out);
}

}  // namespace ws
