// The checksums that footers record: XXH3-64 over every byte before the
// footer, either in one sequence or over fixed parts whose digests are then
// hashed in turn. The second is what lets a reader verify a file on several
// threads at once: a verification is one pass over the file's pages, and
// one thread streams them from memory at a fraction of what two or more
// do (60 MB on a 2-core Intel Xeon guest: 10.0 ms on one thread, 5.2-5.5
// on two).
#pragma once

#include <cstdint>
#include <span>

namespace ravlt {

/// How a footer's checksum covers the bytes before it.
enum class ChecksumScheme {
  kWhole,  ///< XXH3-64 of the bytes (.rvlt format 1; packed-weight files)
  kParts,  ///< XXH3-64 of the little-endian XXH3-64 digests of the bytes'
           ///< consecutive kChecksumPartBytes parts (the last may be
           ///< shorter; none for no bytes), in order (.rvlt format 2)
};

/// The size of a part under ChecksumScheme::kParts.
inline constexpr uint64_t kChecksumPartBytes = uint64_t{4} << 20;

/// The checksum of `bytes` (in memory) by `scheme`.
uint64_t checksum_of(std::span<const uint8_t> bytes, ChecksumScheme scheme);

/// ChecksumScheme::kParts's checksum of the parts' digests, in order.
uint64_t checksum_of_part_digests(std::span<const uint64_t> digests);

}  // namespace ravlt
