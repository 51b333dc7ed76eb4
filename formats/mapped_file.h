// A read-only memory mapping of a whole file.
//
// The mapping is private and read-only: the engine never writes through it,
// and pages are loaded by the kernel on first touch, so "opening" a large
// file costs no copy. Movable, not copyable; unmaps on destruction.
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

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ravlt
