#include "formats/checksum.h"

#include <xxhash.h>

#include <algorithm>
#include <vector>

#include "formats/little_endian.h"

namespace ravlt {

uint64_t checksum_of_part_digests(std::span<const uint64_t> digests) {
  std::vector<uint8_t> bytes(digests.size() * 8);
  for (size_t i = 0; i < digests.size(); ++i) store_le(bytes.data() + 8 * i, digests[i], 8);
  return XXH3_64bits(bytes.data(), bytes.size());
}

std::vector<uint8_t> part_table_of(std::span<const uint8_t> bytes) {
  std::vector<uint8_t> table;
  for (uint64_t at = 0; at < bytes.size(); at += kChecksumPartBytes) {
    const uint64_t n = std::min<uint64_t>(kChecksumPartBytes, bytes.size() - at);
    table.resize(table.size() + 8);
    store_le(table.data() + table.size() - 8, XXH3_64bits(bytes.data() + at, n), 8);
  }
  return table;
}

uint64_t checksum_of(std::span<const uint8_t> bytes, ChecksumScheme scheme) {
  if (scheme == ChecksumScheme::kWhole) return XXH3_64bits(bytes.data(), bytes.size());
  const std::vector<uint8_t> table = part_table_of(bytes);
  return XXH3_64bits(table.data(), table.size());
}

}  // namespace ravlt
