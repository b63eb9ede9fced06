// SPDX-License-Identifier: MIT
#include "weightsmith/mapped-file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>

namespace ws {

namespace {

// Filesystems where a mapping can fault on transient server errors (SIGBUS): read them with pread instead.
bool is_remote_fs(int fd) {
  struct statfs sfs;
  if (fstatfs(fd, &sfs) != 0) return false;
  switch (static_cast<unsigned long>(sfs.f_type)) {
    case 0x6969UL:      // NFS
    case 0x517BUL:      // SMB
    case 0xFF534D42UL:  // CIFS
    case 0xFE534D42UL:  // SMB2
    case 0x65735546UL:  // FUSE
    case 0x00C36400UL:  // Ceph
    case 0x47504653UL:  // GPFS
    case 0x0BD00BD0UL:  // Lustre
    case 0x01021997UL:  // v9fs
      return true;
    default:
      return false;
  }
}

Status errno_status(int err, const std::string& what, const std::string& path) {
  Status s = Status::from_errno(err, what + " '" + path + "': " + std::strerror(err));
  s.with("path", path);
  return s;
}

}  // namespace

Status MappedFile::open(const std::string& path, IoMode mode, std::shared_ptr<MappedFile>* out) {
  struct stat lst;
  if (lstat(path.c_str(), &lst) != 0) return errno_status(errno, "cannot open", path);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (S_ISLNK(lst.st_mode)) {
      Status s(Code::kNotRegularFile, "'" + path + "' is a dangling symbolic link, not a regular file");
      s.with("path", path);
      return s;
    }
    return errno_status(errno, "cannot open", path);
  }
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    Status s(Code::kNotRegularFile, "'" + path + "' is " + kind + ", expected a regular file");
    s.with("path", path);
    return s;
  }
  // O_NONBLOCK: if the path was swapped for a FIFO since stat, open must not hang.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno_status(errno, "cannot open", path);
  struct stat fst;
  if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
    ::close(fd);
    Status s(Code::kNotRegularFile, "'" + path + "' is not a regular file");
    s.with("path", path);
    return s;
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->fd_ = fd;
  f->size_ = static_cast<uint64_t>(fst.st_size);
  f->dev_ = fst.st_dev;
  f->ino_ = fst.st_ino;
  f->mtime_sec_ = fst.st_mtim.tv_sec;
  f->mtime_nsec_ = fst.st_mtim.tv_nsec;
  if (sizeof(size_t) < 8 && f->size_ > static_cast<uint64_t>(SIZE_MAX)) {
    Status s(Code::kFileTooLarge, "'" + path + "' is larger than this process's address space");
    s.with("path", path);
    return s;
  }
  const bool want_map = mode == IoMode::kMmap || (mode == IoMode::kAuto && !is_remote_fs(fd));
  if (want_map && f->size_ > 0) {
    // Copy-on-write (private, writable, no swap reservation): a write through a JS view changes only this
    // process's copy of the page and never the file, and cannot fault. Where the kernel refuses that
    // (strict overcommit), fall back to a read-only mapping.
    void* p = mmap(nullptr, static_cast<size_t>(f->size_), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    f->writable_ = p != MAP_FAILED;
    if (p == MAP_FAILED) p = mmap(nullptr, static_cast<size_t>(f->size_), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      // Some filesystems cannot map; fall back to pread unless the caller insisted on mmap.
      if (mode == IoMode::kMmap) return errno_status(errno, "cannot mmap", path);
    } else {
      f->data_ = static_cast<uint8_t*>(p);
    }
  }
  *out = std::move(f);
  return Status::ok();
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(data_, static_cast<size_t>(size_));
  if (fd_ >= 0) ::close(fd_);
}

Status MappedFile::read(uint64_t offset, void* dst, size_t n) const {
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, static_cast<uint64_t>(n), &end) || end > size_) {
    Status s(Code::kInternal, "read past the end of '" + path_ + "'");
    s.with("path", path_).with("offset", offset);
    return s;
  }
  if (n == 0) return Status::ok();
  if (data_ != nullptr) {
    std::memcpy(dst, data_ + offset, n);
    return Status::ok();
  }
  auto* out = static_cast<uint8_t*>(dst);
  size_t done = 0;
  while (done < n) {
    const size_t want = n - done > 0x7ffff000u ? 0x7ffff000u : n - done;
    const ssize_t got = pread(fd_, out + done, want, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "cannot read", path_);
    }
    if (got == 0) {
      Status s(Code::kFileChanged, "'" + path_ + "' became shorter while it was open");
      s.with("path", path_);
      return s;
    }
    done += static_cast<size_t>(got);
  }
  return Status::ok();
}

Status MappedFile::check_unchanged() const {
  struct stat fst;
  struct stat pst;
  bool changed = fstat(fd_, &fst) != 0 || static_cast<uint64_t>(fst.st_size) != size_ ||
                 fst.st_mtim.tv_sec != mtime_sec_ || fst.st_mtim.tv_nsec != mtime_nsec_;
  if (!changed) {
    // Replaced by rename (a new inode at the path) or deleted.
    changed = stat(path_.c_str(), &pst) != 0 || pst.st_ino != ino_ || pst.st_dev != dev_;
  }
  if (changed) {
    Status s(Code::kFileChanged,
             "'" + path_ + "' was modified, truncated or replaced after it was opened; open it again");
    s.with("path", path_);
    return s;
  }
  return Status::ok();
}

}  // namespace ws
