// Writing a file that ends in a checksum footer, atomically: the bytes go to
// a temporary file beside the target (named after this process, so that two
// processes writing the same file do not mix), hashed as they are written,
// and commit() appends the footer and renames the file into place. A writer
// destroyed before commit() removes its temporary file. Used by the .rvlt
// writer and the packed-weight cache.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "formats/checksum.h"

struct XXH3_state_s;  // xxhash.h

namespace ravlt {

class ChecksummedFileWriter {
 public:
  /// Creates the temporary file for `path`, whose footer's checksum will
  /// be by `scheme`. Throws ravlt::Error naming the path and the reason.
  ChecksummedFileWriter(std::string path, ChecksumScheme scheme);
  ~ChecksummedFileWriter();
  ChecksummedFileWriter(const ChecksummedFileWriter&) = delete;
  ChecksummedFileWriter& operator=(const ChecksummedFileWriter&) = delete;

  /// Appends `n` bytes, hashed into the footer's checksum.
  void write(const void* data, size_t n);
  /// Appends zeros up to file offset `offset` (nothing if already there).
  void pad_to(uint64_t offset);
  uint64_t position() const { return position_; }
  /// Appends the part table (kParts: checksum.h), the 8 bytes of `magic`
  /// and the little-endian checksum (by the scheme) of every byte written
  /// before the table, closes the file and renames it to `path`.
  void commit(const char (&magic)[8]);

 private:
  void write_unhashed(const void* data, size_t n);
  void hash(const uint8_t* data, size_t n);
  std::string path_, temp_path_;
  ChecksumScheme scheme_;
  std::FILE* file_ = nullptr;
  XXH3_state_s* state_ = nullptr;       // the whole file's, or the current part's
  std::vector<uint64_t> part_digests_;  // kParts: of the parts completed
  uint64_t part_filled_ = 0;            // kParts: bytes of the current part
  uint64_t position_ = 0;
  bool committed_ = false;
};

}  // namespace ravlt
