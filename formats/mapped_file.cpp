#include "formats/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "ravlt/error.h"

namespace ravlt {

MappedFile::MappedFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw Error(path + ": file is empty");
  }
  size_ = static_cast<size_t>(st.st_size);
  mtime_s_ = st.st_mtim.tv_sec;
  mtime_ns_ = st.st_mtim.tv_nsec;
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  if (p == MAP_FAILED) {
    ::close(fd);
    throw Error(path + ": cannot map: " + std::strerror(err));
  }
  // The descriptor stays open: it names the file mapped even after another
  // is renamed over the path (unchanged()).
  fd_ = fd;
  data_ = static_cast<const uint8_t*>(p);
  // Mapped a small page at a time: where the page cache holds the file in
  // large folios (ext4 on Linux 6.x reads files back in folios of up to 2
  // MB), a read of one bias would otherwise map its whole folio again,
  // weights released by release() included, and they would count twice
  // (measured on RAVLT-L: 198 of the file's 381 MB stayed resident beside
  // their packed copies). Advice only: where it fails, nothing else changes.
  ::madvise(p, size_, MADV_NOHUGEPAGE);
}

void MappedFile::release(const void* begin, size_t bytes) const {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto lo = std::max(reinterpret_cast<uintptr_t>(begin), reinterpret_cast<uintptr_t>(data_));
  const auto hi = std::min(reinterpret_cast<uintptr_t>(begin) + bytes,
                           reinterpret_cast<uintptr_t>(data_) + size_);
  const uintptr_t first = (lo + page - 1) / page * page, last = hi / page * page;
  if (data_ == nullptr || last <= first) return;
  // Advice only: a failure leaves the pages resident, which is harmless.
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void MappedFile::populate(const void* begin, size_t bytes) const {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto lo = std::max(reinterpret_cast<uintptr_t>(begin), reinterpret_cast<uintptr_t>(data_));
  const auto hi = std::min(reinterpret_cast<uintptr_t>(begin) + bytes,
                           reinterpret_cast<uintptr_t>(data_) + size_);
  if (data_ == nullptr || hi <= lo) return;
  const uintptr_t first = lo / page * page;
#ifdef MADV_POPULATE_READ
  // Any failure but an unknown advice (a file shrunk under the mapping:
  // EFAULT) is left to whoever reads the bytes.
  if (::madvise(reinterpret_cast<void*>(first), hi - first, MADV_POPULATE_READ) == 0 ||
      errno != EINVAL) {
    return;
  }
#endif
  // A kernel without it (before Linux 5.14): a read per page (the
  // mapping's own bytes, so never outside it).
  uint8_t sink = 0;
  for (uintptr_t at = std::max(first, reinterpret_cast<uintptr_t>(data_)); at < hi; at += page) {
    sink ^= *reinterpret_cast<const volatile uint8_t*>(at);
  }
  static_cast<void>(sink);
}

size_t MappedFile::resident_bytes() const {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  char start[32];
  std::snprintf(start, sizeof start, "%lx-",
                static_cast<unsigned long>(reinterpret_cast<uintptr_t>(data_)));
  bool in_mapping = false;
  while (std::getline(smaps, line)) {
    if (line.rfind(start, 0) == 0) {
      in_mapping = true;
    } else if (in_mapping && line.rfind("Rss:", 0) == 0) {
      std::istringstream fields(line.substr(4));
      size_t kb = 0;
      fields >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

bool MappedFile::unchanged() const {
  struct stat st {};
  // A descriptor of an open file does not fail fstat(); if it ever did,
  // nothing would show a change.
  if (fd_ < 0 || ::fstat(fd_, &st) != 0) return true;
  return static_cast<size_t>(st.st_size) == size_ && st.st_mtim.tv_sec == mtime_s_ &&
         st.st_mtim.tv_nsec == mtime_ns_;
}

void MappedFile::check_unchanged() const {
  if (unchanged()) return;
  struct stat st {};
  const bool known = fd_ >= 0 && ::fstat(fd_, &st) == 0;
  const std::string how =
      known && static_cast<size_t>(st.st_size) == size_
          ? "same size, modified since"
          : (known ? std::to_string(st.st_size) + " bytes now, " : std::string()) +
                std::to_string(size_) + " when opened";
  throw Error(path_ + ": the file was written after it was opened (" + how +
              "), so its bytes are no longer the ones loaded: open it again (to replace a "
              "file in use, write the new one beside it and rename it over the old: a process "
              "that has the old one open keeps it)");
}

void MappedFile::close_all() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
  data_ = nullptr;
  fd_ = -1;
}

MappedFile::~MappedFile() {
  close_all();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      fd_(std::exchange(other.fd_, -1)),
      mtime_s_(other.mtime_s_),
      mtime_ns_(other.mtime_ns_) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    close_all();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    fd_ = std::exchange(other.fd_, -1);
    mtime_s_ = other.mtime_s_;
    mtime_ns_ = other.mtime_ns_;
  }
  return *this;
}

}  // namespace ravlt
