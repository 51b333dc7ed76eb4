// Little-endian integers in byte buffers: the one byte order of every file
// format here (.rvlt headers and footers, pickles, the packed-weight cache).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ravlt {

/// The `n`-byte (at most 8) little-endian unsigned integer at `p`.
inline uint64_t load_le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}

/// Writes the low `n` bytes (at most 8) of `v` at `p`, little-endian.
inline void store_le(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace ravlt
