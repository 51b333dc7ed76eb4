// Read-only access to a zip archive (libzip), hardened for untrusted files.
//
// Opening checks the archive's consistency (ZIP_CHECKCONS: central
// directory against local headers) and refuses duplicated names. Reading an
// entry checks its declared size, its CRC, and a compression ratio limit so
// that a small file cannot expand into an unbounded one (a zip bomb).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct zip;

namespace ravlt::torch {

class ZipArchive {
 public:
  /// Opens `path`. Throws ravlt::Error naming it if it is not a readable,
  /// consistent zip archive.
  explicit ZipArchive(const std::string& path);
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  const std::vector<std::string>& names() const { return names_; }
  /// Index of the entry named `name`, if any.
  std::optional<uint64_t> find(const std::string& name) const;
  /// Uncompressed size the archive declares for entry `index`.
  uint64_t size(uint64_t index) const;
  /// Reads entry `index` whole into `out` (resized to its declared size).
  /// Throws if the data is shorter or longer than declared, fails its CRC,
  /// or expands beyond the ratio limit.
  void read(uint64_t index, std::vector<uint8_t>& out) const;

 private:
  std::string path_;
  zip* archive_ = nullptr;
  std::vector<std::string> names_;
  uint64_t file_size_ = 0;
};

}  // namespace ravlt::torch
