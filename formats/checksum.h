// The checksums that footers record: XXH3-64 over a file's bytes, either in
// one sequence or over fixed parts whose digests are then hashed in turn
// (and stored, between the bytes and the footer). The second is what lets
// a reader verify a file on several threads at once: a verification is one
// pass over the file's pages, and one thread streams them from memory at a
// fraction of what two or more do (60 MB on a 2-core Intel Xeon guest:
// 10.0 ms on one thread, 5.2-5.5 on two).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ravlt {

/// How a footer's checksum covers the bytes before it.
enum class ChecksumScheme {
  kWhole,  ///< XXH3-64 of the bytes (.rvlt format 1.x)
  kParts,  ///< XXH3-64 of the little-endian XXH3-64 digests of the bytes'
           ///< consecutive kChecksumPartBytes parts (the last may be
           ///< shorter; none for no bytes), in order; the file stores
           ///< those digests too, between the bytes and the footer (the
           ///< part table), so that a part can be checked alone
           ///< (.rvlt format 2.0, packed-weight files)
};

/// The size of a part under ChecksumScheme::kParts.
inline constexpr uint64_t kChecksumPartBytes = uint64_t{4} << 20;

/// The bytes of the part table after `checksummed` bytes (kParts; none
/// for kWhole): 8 for each part.
inline constexpr uint64_t part_table_bytes(uint64_t checksummed, ChecksumScheme scheme) {
  return scheme == ChecksumScheme::kWhole
             ? 0
             : 8 * (checksummed / kChecksumPartBytes + (checksummed % kChecksumPartBytes != 0));
}

/// The checksum of `bytes` (in memory) by `scheme`.
uint64_t checksum_of(std::span<const uint8_t> bytes, ChecksumScheme scheme);

/// The part table of parts with these digests, in order: each
/// little-endian (kParts).
std::vector<uint8_t> part_table_from_digests(std::span<const uint64_t> digests);

/// ChecksumScheme::kParts's checksum of the parts' digests, in order: the
/// XXH3-64 of their part table.
uint64_t checksum_of_part_digests(std::span<const uint64_t> digests);

/// The little-endian digests of `bytes`' parts: the part table a file of
/// them stores (kParts).
std::vector<uint8_t> part_table_of(std::span<const uint8_t> bytes);

}  // namespace ravlt
