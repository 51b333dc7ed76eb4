#include "formats/checksum.h"

#include <xxhash.h>

#include <algorithm>
#include <vector>

#include "formats/little_endian.h"

namespace ravlt {

std::vector<uint8_t> part_table_from_digests(std::span<const uint64_t> digests) {
  std::vector<uint8_t> table(digests.size() * 8);
  for (size_t i = 0; i < digests.size(); ++i) store_le(table.data() + 8 * i, digests[i], 8);
  return table;
}

uint64_t checksum_of_part_digests(std::span<const uint64_t> digests) {
  const std::vector<uint8_t> table = part_table_from_digests(digests);
  return XXH3_64bits(table.data(), table.size());
}

std::vector<uint8_t> part_table_of(std::span<const uint8_t> bytes) {
  std::vector<uint64_t> digests;
  for (uint64_t at = 0; at < bytes.size(); at += kChecksumPartBytes) {
    const uint64_t n = std::min<uint64_t>(kChecksumPartBytes, bytes.size() - at);
    digests.push_back(XXH3_64bits(bytes.data() + at, n));
  }
  return part_table_from_digests(digests);
}

uint64_t checksum_of(std::span<const uint8_t> bytes, ChecksumScheme scheme) {
  if (scheme == ChecksumScheme::kWhole) return XXH3_64bits(bytes.data(), bytes.size());
  const std::vector<uint8_t> table = part_table_of(bytes);
  return XXH3_64bits(table.data(), table.size());
}

}  // namespace ravlt
