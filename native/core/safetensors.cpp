// SPDX-License-Identifier: MIT
// Two passes over the header: (1) UTF-8, then JSON syntax with an explicit nesting stack (no recursion, depth
// limit 128); (2) a schema walk that builds the tensor table. The second pass only ever sees well-formed JSON,
// so every schema error is reported with its specific code rather than as a syntax error.
#include "weightsmith/safetensors.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "weightsmith/checked.h"
#include "weightsmith/utf8.h"

namespace ws {

namespace {

Status json_error(const std::string& what, size_t pos) {
  Status s(Code::kStHeaderJson, "invalid safetensors header: " + what + " at header byte " + std::to_string(pos));
  s.with("offset", static_cast<uint64_t>(pos));
  return s;
}

// ---- pass 1: JSON syntax ---------------------------------------------------------------------------------
class Lexer {
 public:
  Lexer(const uint8_t* s, size_t n) : s_(s), n_(n) {}
  size_t pos() const { return pos_; }
  bool at_end() const { return pos_ >= n_; }
  uint8_t peek() const { return pos_ < n_ ? s_[pos_] : 0; }
  void skip_ws() {
    while (pos_ < n_ && (s_[pos_] == 0x20 || s_[pos_] == 0x09 || s_[pos_] == 0x0A || s_[pos_] == 0x0D)) ++pos_;
  }
  bool eat(uint8_t c) {
    if (pos_ < n_ && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  // Parses a string starting at '"'. When out is non-null the decoded UTF-8 is stored there.
  Status string(std::string* out) {
    if (!eat('"')) return json_error("expected a string", pos_);
    if (out) out->clear();
    for (;;) {
      if (pos_ >= n_) return json_error("unterminated string", pos_);
      const uint8_t c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return Status::ok();
      }
      if (c < 0x20) return json_error("control character in a string", pos_);
      if (c != '\\') {
        if (out) out->push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= n_) return json_error("unterminated escape", pos_);
      const uint8_t e = s_[pos_++];
      char simple = 0;
      switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': break;
        default: return json_error("invalid escape", pos_ - 1);
      }
      if (e != 'u') {
        if (out) out->push_back(simple);
        continue;
      }
      uint32_t cp = 0;
      WS_RETURN_IF_ERROR(hex4(&cp));
      if (cp >= 0xDC00 && cp <= 0xDFFF) return json_error("lone low surrogate in \\u escape", pos_ - 6);
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (!(pos_ + 1 < n_ && s_[pos_] == '\\' && s_[pos_ + 1] == 'u'))
          return json_error("lone high surrogate in \\u escape", pos_ - 6);
        pos_ += 2;
        uint32_t lo = 0;
        WS_RETURN_IF_ERROR(hex4(&lo));
        if (lo < 0xDC00 || lo > 0xDFFF) return json_error("invalid surrogate pair", pos_ - 6);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      if (out) append_utf8(out, cp);
    }
  }

  // Parses a number token; sets *negative/*integer and, for integers, *value (false in *fits on overflow).
  Status number(bool* negative, bool* integer, uint64_t* value, bool* fits) {
    const size_t start = pos_;
    *negative = eat('-');
    *integer = true;
    *fits = true;
    *value = 0;
    if (pos_ >= n_ || s_[pos_] < '0' || s_[pos_] > '9') return json_error("invalid number", start);
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') {
        const uint64_t d = s_[pos_] - '0';
        if (*fits && (!checked_mul(*value, 10, value) || !checked_add(*value, d, value))) *fits = false;
        ++pos_;
      }
    }
    if (eat('.')) {
      *integer = false;
      if (pos_ >= n_ || s_[pos_] < '0' || s_[pos_] > '9') return json_error("invalid number", start);
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < n_ && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      *integer = false;
      ++pos_;
      if (!eat('+')) eat('-');
      if (pos_ >= n_ || s_[pos_] < '0' || s_[pos_] > '9') return json_error("invalid number", start);
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    return Status::ok();
  }

  Status literal() {
    static const char* const kWords[] = {"true", "false", "null"};
    for (const char* w : kWords) {
      const size_t len = std::strlen(w);
      if (n_ - pos_ >= len && std::memcmp(s_ + pos_, w, len) == 0) {
        pos_ += len;
        return Status::ok();
      }
    }
    return json_error("unexpected character", pos_);
  }

  // A scalar value (string, number, literal); containers are handled by the caller.
  Status scalar() {
    const uint8_t c = peek();
    if (c == '"') return string(nullptr);
    if (c == '-' || (c >= '0' && c <= '9')) {
      bool neg, integer, fits;
      uint64_t v;
      return number(&neg, &integer, &v, &fits);
    }
    return literal();
  }

 private:
  Status hex4(uint32_t* out) {
    if (n_ - pos_ < 4) return json_error("truncated \\u escape", pos_);
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const uint8_t h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return json_error("invalid \\u escape", pos_ - 1);
    }
    *out = v;
    return Status::ok();
  }
  static void append_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  const uint8_t* s_;
  size_t n_;
  size_t pos_ = 0;
};

Status json_validate(const uint8_t* s, size_t n) {
  Lexer lx(s, n);
  std::vector<uint8_t> stack;  // '{' or '['
  lx.skip_ws();
  for (;;) {
    // expecting a value
    lx.skip_ws();
    const uint8_t c = lx.peek();
    if (lx.at_end()) return json_error("unexpected end of header", lx.pos());
    if (c == '{' || c == '[') {
      if (stack.size() >= static_cast<size_t>(kJsonMaxDepth))
        return json_error("nesting deeper than " + std::to_string(kJsonMaxDepth) + " levels (depth limit)", lx.pos());
      stack.push_back(c);
      lx.eat(c);
      lx.skip_ws();
      if (lx.eat(c == '{' ? '}' : ']')) {
        stack.pop_back();
      } else if (c == '{') {
        if (lx.peek() != '"') return json_error("expected a key string", lx.pos());
        WS_RETURN_IF_ERROR(lx.string(nullptr));
        lx.skip_ws();
        if (!lx.eat(':')) return json_error("expected ':'", lx.pos());
        continue;
      } else {
        continue;
      }
    } else {
      WS_RETURN_IF_ERROR(lx.scalar());
    }
    // after a value
    for (;;) {
      lx.skip_ws();
      if (stack.empty()) {
        if (!lx.at_end()) return json_error("trailing bytes after the JSON value", lx.pos());
        return Status::ok();
      }
      const uint8_t top = stack.back();
      if (lx.eat(',')) {
        if (top == '{') {
          lx.skip_ws();
          if (lx.peek() != '"') return json_error("expected a key string", lx.pos());
          WS_RETURN_IF_ERROR(lx.string(nullptr));
          lx.skip_ws();
          if (!lx.eat(':')) return json_error("expected ':'", lx.pos());
        }
        break;  // next value
      }
      if (lx.eat(top == '{' ? '}' : ']')) {
        stack.pop_back();
        continue;
      }
      if (lx.at_end()) return json_error("unexpected end of header", lx.pos());
      return json_error(top == '{' ? "expected ',' or '}'" : "expected ',' or ']'", lx.pos());
    }
  }
}

// ---- pass 2: schema --------------------------------------------------------------------------------------
Status tensor_error(Code code, const std::string& name, const std::string& what) {
  Status s(code, "tensor '" + name + "': " + what);
  s.with("tensor", name);
  return s;
}

// Reads an array of unsigned integers; code is the error code for a malformed array.
Status read_uint_array(Lexer& lx, const std::string& name, const char* field, Code code, uint64_t max_len,
                       uint64_t max_value, std::vector<uint64_t>* out) {
  lx.skip_ws();
  if (!lx.eat('[')) return tensor_error(code, name, std::string(field) + " must be an array of unsigned integers");
  out->clear();
  lx.skip_ws();
  if (lx.eat(']')) return Status::ok();
  for (;;) {
    lx.skip_ws();
    const uint8_t c = lx.peek();
    if (!(c == '-' || (c >= '0' && c <= '9')))
      return tensor_error(code, name, std::string(field) + " must hold only unsigned integers");
    bool neg, integer, fits;
    uint64_t v;
    WS_RETURN_IF_ERROR(lx.number(&neg, &integer, &v, &fits));
    if (neg) return tensor_error(code, name, std::string(field) + " holds a negative value");
    if (!integer) return tensor_error(code, name, std::string(field) + " holds a non-integer value");
    if (!fits) return tensor_error(code, name, std::string(field) + " holds a value above 2^64-1");
    if (v > max_value)
      return tensor_error(code, name, std::string(field) + " holds " + std::to_string(v) +
                                          ", above the supported maximum " + std::to_string(max_value));
    if (out->size() >= max_len) {
      if (code == Code::kStOffset) return tensor_error(code, name, "data_offsets must have exactly 2 entries");
      Status s = tensor_error(Code::kLimitExceeded, name,
                              "rank exceeds the limit of " + std::to_string(max_len) + " (maxRank)");
      s.with("limit", max_len);
      return s;
    }
    out->push_back(v);
    lx.skip_ws();
    if (lx.eat(',')) continue;
    lx.eat(']');
    return Status::ok();
  }
}

// Walks the members of the object at the cursor (pass 1 has validated the syntax): on_member(key) parses the
// value that follows the key, and returns a Status that stops the walk when it is an error.
template <typename OnMember>
Status for_each_member(Lexer& lx, OnMember&& on_member) {
  lx.skip_ws();
  lx.eat('{');
  lx.skip_ws();
  if (lx.eat('}')) return Status::ok();
  for (;;) {
    lx.skip_ws();
    std::string key;
    WS_RETURN_IF_ERROR(lx.string(&key));
    lx.skip_ws();
    lx.eat(':');
    lx.skip_ws();
    WS_RETURN_IF_ERROR(on_member(std::move(key)));
    lx.skip_ws();
    if (lx.eat(',')) continue;
    lx.eat('}');
    return Status::ok();
  }
}

Status parse_metadata(Lexer& lx, StHeader* out) {
  lx.skip_ws();
  if (lx.peek() != '{') return Status(Code::kStMetadataType, "__metadata__ must be an object of strings");
  std::unordered_set<std::string> seen;
  return for_each_member(lx, [&](std::string key) {
    if (lx.peek() != '"') {
      Status s(Code::kStMetadataType, "__metadata__ value for '" + key + "' must be a string");
      s.with("key", key);
      return s;
    }
    std::string value;
    WS_RETURN_IF_ERROR(lx.string(&value));
    if (!seen.insert(key).second) {
      Status s(Code::kStDuplicateKey, "duplicate key '" + key + "' in __metadata__");
      s.with("key", key);
      return s;
    }
    out->metadata.emplace_back(std::move(key), std::move(value));
    return Status::ok();
  });
}

Status parse_tensor(Lexer& lx, const StLimits& limits, StTensorInfo* t) {
  const std::string& name = t->name;
  lx.skip_ws();
  if (lx.peek() != '{') return tensor_error(Code::kStTensorInfo, name, "entry must be an object");
  bool have_dtype = false, have_shape = false, have_offsets = false;
  std::vector<uint64_t> offsets;
  WS_RETURN_IF_ERROR(for_each_member(lx, [&](std::string key) {
    bool* have = key == "dtype" ? &have_dtype : key == "shape" ? &have_shape : key == "data_offsets" ? &have_offsets : nullptr;
    if (have == nullptr) return tensor_error(Code::kStTensorInfo, name, "unknown field '" + key + "'");
    if (*have) return tensor_error(Code::kStDuplicateKey, name, "duplicate field '" + key + "'");
    *have = true;
    if (key == "dtype") {
      if (lx.peek() != '"') return tensor_error(Code::kStDtype, name, "dtype must be a string");
      std::string d;
      WS_RETURN_IF_ERROR(lx.string(&d));
      if (!dtype_from_st_name(d, &t->dtype))
        return tensor_error(Code::kStDtype, name, "unknown dtype \"" + d + "\" (names are case-sensitive, e.g. \"F32\")");
      return Status::ok();
    }
    if (key == "shape") return read_uint_array(lx, name, "shape", Code::kStTensorInfo, limits.max_rank, UINT64_MAX, &t->shape);
    WS_RETURN_IF_ERROR(read_uint_array(lx, name, "data_offsets", Code::kStOffset, 2, kMaxSafeInteger, &offsets));
    if (offsets.size() != 2) return tensor_error(Code::kStOffset, name, "data_offsets must have exactly 2 entries");
    return Status::ok();
  }));
  if (!have_dtype) return tensor_error(Code::kStTensorInfo, name, "missing field 'dtype'");
  if (!have_shape) return tensor_error(Code::kStTensorInfo, name, "missing field 'shape'");
  if (!have_offsets) return tensor_error(Code::kStOffset, name, "missing field 'data_offsets'");
  t->begin = offsets[0];
  t->end = offsets[1];

  uint64_t numel = 0;
  if (!checked_numel(t->shape.data(), t->shape.size(), &numel))
    return tensor_error(Code::kStOverflow, name, "element count of the shape overflows 64 bits");
  uint64_t total_bits = 0;
  if (!checked_mul(numel, dtype_info(t->dtype).bits, &total_bits))
    return tensor_error(Code::kStOverflow, name, "byte size of the shape overflows 64 bits");
  if (total_bits % 8 != 0)
    return tensor_error(Code::kStMisaligned, name,
                        std::to_string(numel) + " elements of " + dtype_info(t->dtype).st_name + " do not fill whole bytes");
  if (t->begin > t->end)
    return tensor_error(Code::kStOffset, name,
                        "data_offsets begin " + std::to_string(t->begin) + " is after end " + std::to_string(t->end));
  if (t->end - t->begin != total_bits / 8) {
    Status s = tensor_error(Code::kStTensorInfo, name,
                            "data_offsets span " + std::to_string(t->end - t->begin) + " bytes but shape and dtype need " +
                                std::to_string(total_bits / 8));
    s.with("declared", t->end - t->begin).with("expected", total_bits / 8);
    return s;
  }
  for (uint64_t d : t->shape) {
    // Only reachable when another dimension is 0: JavaScript numbers could not hold the dimension exactly.
    if (d > kMaxSafeInteger)
      return tensor_error(Code::kFileTooLarge, name, "dimension " + std::to_string(d) + " exceeds 2^53-1, which JavaScript cannot represent");
  }
  return Status::ok();
}

}  // namespace

Status st_read_prefix(const uint8_t* prefix, uint64_t file_size, uint64_t* header_size) {
  if (file_size < 8) {
    Status s(Code::kStHeaderTooSmall, "file of " + std::to_string(file_size) +
                                          " bytes is too small to be a safetensors file (needs at least 8)");
    s.with("size", file_size);
    return s;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > kStMaxHeaderSize) {
    Status s(Code::kStHeaderTooLarge, "header length " + std::to_string(n) +
                                          " exceeds 100,000,000 bytes: not a safetensors file or corrupt");
    s.with("declared", n).with("limit", kStMaxHeaderSize);
    return s;
  }
  if (8 + n > file_size) {
    Status s(Code::kStHeaderLength, "header length " + std::to_string(n) + " runs past the end of the file (file size " +
                                        std::to_string(file_size) + " bytes)");
    s.with("declared", n).with("size", file_size);
    return s;
  }
  *header_size = n;
  return Status::ok();
}

Status st_parse_header(const uint8_t* header, uint64_t header_size, uint64_t file_size, const StLimits& limits,
                       StHeader* out) {
  *out = StHeader();
  out->header_size = header_size;
  const size_t n = static_cast<size_t>(header_size);
  size_t bad = 0;
  if (!utf8_valid(header, n, &bad)) {
    Status s(Code::kStHeaderUtf8, "header is not valid UTF-8 (header byte " + std::to_string(bad) + ")");
    s.with("offset", static_cast<uint64_t>(bad));
    return s;
  }
  WS_RETURN_IF_ERROR(json_validate(header, n));

  Lexer lx(header, n);
  lx.skip_ws();
  if (lx.peek() != '{') return json_error("header must be a JSON object", lx.pos());
  std::unordered_set<std::string> names;
  WS_RETURN_IF_ERROR(for_each_member(lx, [&](std::string key) {
    if (key == "__metadata__") {
      if (out->has_metadata) return Status(Code::kStDuplicateKey, "duplicate key '__metadata__'");
      out->has_metadata = true;
      return parse_metadata(lx, out);
    }
    if (!names.insert(key).second) {
      Status s(Code::kStDuplicateKey, "duplicate tensor name '" + key + "'");
      s.with("tensor", key);
      return s;
    }
    if (out->tensors.size() >= limits.max_tensors) {
      Status s(Code::kLimitExceeded, "header declares more than " + std::to_string(limits.max_tensors) + " tensors (maxTensors)");
      s.with("limit", limits.max_tensors);
      return s;
    }
    StTensorInfo t;
    t.name = std::move(key);
    WS_RETURN_IF_ERROR(parse_tensor(lx, limits, &t));
    out->tensors.push_back(std::move(t));
    return Status::ok();
  }));

  auto& ts = out->tensors;
  std::stable_sort(ts.begin(), ts.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& t : ts) {
    if (t.begin != expected) {
      Status s = tensor_error(Code::kStOffset, t.name,
                              t.begin < expected ? "data overlaps the previous tensor (begins at " + std::to_string(t.begin) +
                                                       ", previous ends at " + std::to_string(expected) + ")"
                                                 : "gap before the tensor data (begins at " + std::to_string(t.begin) +
                                                       ", previous ends at " + std::to_string(expected) + ")");
      s.with("offset", t.begin);
      return s;
    }
    expected = t.end;
  }
  uint64_t declared = 0;
  if (!checked_add(8 + header_size, expected, &declared) || declared != file_size) {
    Status s(Code::kStIncompleteBuffer,
             "tensors cover " + std::to_string(expected) + " data bytes, so the file should be " + std::to_string(declared) +
                 " bytes, but it is " + std::to_string(file_size) +
                 (declared > file_size ? " (truncated?)" : " (trailing bytes after the last tensor)"));
    s.with("declared", declared).with("size", file_size);
    return s;
  }
  return Status::ok();
}

Status st_parse_file(const uint8_t* data, uint64_t size, const StLimits& limits, StHeader* out) {
  uint64_t n = 0;
  WS_RETURN_IF_ERROR(st_read_prefix(data, size, &n));
  return st_parse_header(data + 8, n, size, limits, out);
}

}  // namespace ws
