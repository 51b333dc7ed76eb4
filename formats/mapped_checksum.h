// The XXH3-64 checksum of a mapped file's leading bytes: what a footer
// written by ChecksummedFileWriter records (.rvlt model files, packed-weight
// files), read with the file's pages mapped ahead of the hash.
#pragma once

#include <cstdint>

#include "formats/mapped_file.h"

namespace ravlt {

/// What happens to the pages once hashed.
enum class AfterHashing {
  kKeepPages,     ///< they stay mapped (a reader comes next)
  kReleasePages,  ///< each part is released (MappedFile::release) once hashed
};

/// XXH3-64 of the first `end` bytes of `file` (an `end` past its size:
/// the whole file).
/// kKeepPages is for a check made while nothing else runs (opening a file):
/// a second thread maps parts ahead of the hash. kReleasePages is for one
/// made beside other work, on the calling thread alone.
uint64_t mapped_checksum(const MappedFile& file, uint64_t end, AfterHashing after);

}  // namespace ravlt
