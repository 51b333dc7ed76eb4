// A read-only memory mapping of a whole file.
//
// The mapping is private and read-only: the engine never writes through it,
// and pages are loaded by the kernel on first touch, so "opening" a large
// file costs no copy. Movable, not copyable; unmaps on destruction.
//
// A mapping shows the file as it is now, not as it was opened: bytes
// written into the file later appear in it (except in pages this process
// wrote, which it never does), and a read past a shortened end kills the
// process (SIGBUS). A new file renamed over the path changes nothing here
// (the mapping holds the old one). unchanged() tells whether the file was
// written since it was opened, so that a reader can refuse before it
// reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ravlt {

class MappedFile {
 public:
  /// Maps `path`. Throws ravlt::Error naming the path on failure
  /// (missing, unreadable, a directory, empty).
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

  /// Drops this process's copies of the pages wholly inside [begin, begin +
  /// bytes) (a range of the mapping; anything outside it is ignored): for
  /// data that has been copied elsewhere and is not read again, so that it
  /// stops counting in the resident memory. The mapping is read-only and
  /// private, never written: a page touched again is read back from the
  /// file, so this never changes what the mapping holds.
  void release(const void* begin, size_t bytes) const;
  /// Maps the pages of [begin, begin + bytes) (a range of the mapping;
  /// anything outside it is ignored) now, in one call where the kernel
  /// can (MADV_POPULATE_READ, Linux 5.14), else by reading a byte of each
  /// page: so that a reader on another thread finds them mapped rather
  /// than faulting them in one by one. Changes nothing that is read.
  void populate(const void* begin, size_t bytes) const;
  /// Bytes of the mapping resident in this process now (Linux: the Rss of
  /// the mapping in /proc/self/smaps; 0 where that cannot be read).
  size_t resident_bytes() const;

  /// Whether the file mapped (the one opened, wherever its path points now)
  /// still has the size and modification time it had when opened: false
  /// once anything wrote into it or truncated it (a write within the
  /// filesystem's timestamp granularity of the open, a few ms, that keeps
  /// the size may go unseen). One fstat(); thread-safe.
  bool unchanged() const;
  /// Throws ravlt::Error naming the path, the sizes, and what to do, unless
  /// unchanged().
  void check_unchanged() const;

 private:
  void close_all() noexcept;

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;                         // kept open: the file's identity for unchanged()
  int64_t mtime_s_ = 0, mtime_ns_ = 0;  // its modification time when opened
};

}  // namespace ravlt
