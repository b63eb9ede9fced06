// SPDX-License-Identifier: MIT
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "weightsmith/gguf.h"
#include "weightsmith/mapped-file.h"
#include "weightsmith/safetensors.h"

namespace ws::binding {

// One tensor of an open file, whatever its format: shape in PyTorch order, data at an absolute offset.
struct TableEntry {
  std::string name;
  DType dtype = DType::kCount;  // kCount for ggml block-quantized data
  uint32_t ggml_type = 255;     // GGUF files only
  std::vector<uint64_t> shape;
  uint64_t offset = 0;
  uint64_t nbytes = 0;
};

struct OpenedFile {
  std::shared_ptr<MappedFile> file;
  bool gguf = false;
  uint64_t header_size = 0;  // safetensors N, or the GGUF data section start
  StHeader st;               // safetensors metadata (tensors moved into `tensors`)
  GgufFile gguf_file;        // GGUF metadata and version (tensors moved into `tensors`)
  std::vector<TableEntry> tensors;
};

// One open weight file (safetensors or GGUF). JS holds it inside a WeightFile; views over it are external
// ArrayBuffers that each own a reference to the MappedFile.
class NativeFile : public Napi::ObjectWrap<NativeFile> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit NativeFile(const Napi::CallbackInfo& info);
  // The mapping, for async workers that must keep it alive; nullptr once closed.
  std::shared_ptr<MappedFile> file() const { return file_; }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value ReadInto(const Napi::CallbackInfo& info);
  Napi::Value Check(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);
  const TableEntry& tensor_at(const Napi::Value& index);
  void ensure_open(Napi::Env env);

  std::shared_ptr<MappedFile> file_;
  OpenedFile table_;  // everything but the mapping
};

Napi::Value OpenFileSync(const Napi::CallbackInfo& info);
Napi::Value OpenFileAsync(const Napi::CallbackInfo& info);
Napi::Value DetachBuffer(const Napi::CallbackInfo& info);

// Collects the mappings behind an array of NativeFile objects (owners of the views an async op reads), so
// the op keeps them mapped until it settles.
std::vector<std::shared_ptr<MappedFile>> pin_owners(const Napi::Value& owners);

}  // namespace ws::binding
