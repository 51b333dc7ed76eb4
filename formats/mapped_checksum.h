// The checksum of a mapped file's leading bytes: what a footer written by
// ChecksummedFileWriter records (.rvlt model files, packed-weight files),
// read with the file's pages mapped ahead of the hash, or by parts on
// several threads (checksum.h).
#pragma once

#include <cstdint>

#include "formats/checksum.h"
#include "formats/mapped_file.h"

namespace ravlt {

/// What happens to the pages once hashed.
enum class AfterHashing {
  kKeepPages,     ///< they stay mapped (a reader comes next)
  kReleasePages,  ///< each part is released (MappedFile::release) once hashed
};

/// The checksum by `scheme` of the first `end` bytes of `file` (an `end`
/// past its size: the whole file).
/// kKeepPages is for a check made while nothing else runs (opening a file):
/// kWhole's single hash has a second thread map parts ahead of it; kParts
/// hashes parts on up to kMaxChecksumThreads threads, each mapping its own.
/// kReleasePages is for one made beside other work, on the calling thread
/// alone.
uint64_t mapped_checksum(const MappedFile& file, uint64_t end, AfterHashing after,
                         ChecksumScheme scheme);

/// Whether `recorded` (a footer's checksum) is that of `file`'s first `end`
/// bytes by `scheme` (as mapped_checksum()), and with kParts also that of
/// the part table stored right after them (part_table_bytes() bytes at
/// `end`, which the caller has found inside the file): a damaged table is
/// refused like damaged bytes.
bool checksum_matches(const MappedFile& file, uint64_t end, AfterHashing after,
                      ChecksumScheme scheme, uint64_t recorded);

/// The most threads a kKeepPages check by parts uses (fewer where the
/// machine has fewer cores, or the bytes fewer parts).
inline constexpr unsigned kMaxChecksumThreads = 4;

}  // namespace ravlt
