// SPDX-License-Identifier: MIT
// MappedFile: a read-only weight file, memory-mapped (default) or read with pread. It lives behind a
// std::shared_ptr: every tensor view handed to JavaScript and every running kernel holds a reference, so the
// mapping is unmapped only after the last user is gone, whatever order close() and the views go away in.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "weightsmith/status.h"

namespace ws {

enum class IoMode { kAuto, kMmap, kPread };

class MappedFile {
 public:
  // Opens a regular file. Directories, FIFOs, devices and dangling symlinks give kNotRegularFile before any
  // mapping. kAuto maps the file unless it lives on a network or FUSE filesystem (then pread).
  static Status open(const std::string& path, IoMode mode, std::shared_ptr<MappedFile>* out);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  bool mapped() const { return data_ != nullptr; }
  IoMode mode() const { return mapped() ? IoMode::kMmap : IoMode::kPread; }
  // Base of the mapping; nullptr in pread mode or for an empty file.
  const uint8_t* data() const { return data_; }
  // Whether the mapping is private and writable (copy-on-write): only then may JavaScript see it as an
  // ordinary, writable ArrayBuffer. A read-only fallback mapping (strict overcommit) is served by copies.
  bool writable() const { return writable_; }

  // Copies [offset, offset + n) into dst: memcpy from the mapping, or a pread loop (EINTR and short reads
  // handled). Bounds are checked against the size seen at open.
  Status read(uint64_t offset, void* dst, size_t n) const;

  // Re-stats the open descriptor and the path: a different size, mtime or inode gives kFileChanged. Called
  // before every operation that touches the data.
  Status check_unchanged() const;

 private:
  MappedFile() = default;
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint8_t* data_ = nullptr;
  bool writable_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  int64_t mtime_sec_ = 0;
  int64_t mtime_nsec_ = 0;
};

}  // namespace ws
