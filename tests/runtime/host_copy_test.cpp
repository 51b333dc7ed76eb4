// Parallel copies of host buffers (a GPU session's input and outputs): every
// byte lands, whatever the size, alignment and thread count, nothing past
// the end is written; transfer pieces tile a copy in whole units.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/host_copy.h"

using ravlt::runtime::copy_piece_bytes;
using ravlt::runtime::kParallelCopyFrom;
using ravlt::runtime::parallel_copy;

TEST_CASE("a parallel copy moves every byte and nothing past the end") {
  const size_t sizes[] = {0,
                          1,
                          63,
                          4096 + 3,
                          kParallelCopyFrom - 1,
                          kParallelCopyFrom,
                          3 * kParallelCopyFrom + 17,
                          5 * kParallelCopyFrom + 64 * 7 + 5};
  for (const size_t bytes : sizes) {
    for (const int threads : {0, 1, 2, 3, 7}) {
      for (const size_t shift : {size_t{0}, size_t{1}, size_t{13}}) {
        CAPTURE(bytes);
        CAPTURE(threads);
        CAPTURE(shift);
        // (One byte more than used: never an empty vector whose data() is null.)
        std::vector<uint8_t> src(bytes + shift + 1), dst(bytes + shift + 64, 0xAB);
        for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
        parallel_copy(dst.data() + shift, src.data() + shift, bytes, threads);
        CHECK(std::memcmp(dst.data() + shift, src.data() + shift, bytes) == 0);
        bool untouched = true;
        for (size_t i = 0; i < shift; ++i) untouched &= dst[i] == 0xAB;
        for (size_t i = shift + bytes; i < dst.size(); ++i) untouched &= dst[i] == 0xAB;
        CHECK(untouched);
      }
    }
  }
}

TEST_CASE("transfer pieces are whole units that tile the copy") {
  // One piece when the copy is small; else equal pieces, a multiple of the
  // unit, and a shorter last one.
  CHECK(copy_piece_bytes(0, 256) == 0);
  CHECK(copy_piece_bytes(1000, 256) == 1000);
  const size_t big = size_t{154} << 20;  // a batch of 256 RAVLT inputs
  const size_t piece = copy_piece_bytes(big, 256);
  CHECK(piece < big);
  CHECK(piece % 256 == 0);
  CHECK(piece >= kParallelCopyFrom);  // each piece still worth the threads
  CHECK(copy_piece_bytes(big, 3 << 20) % (3 << 20) == 0);
  CHECK(copy_piece_bytes(big, 0) > 0);
  // A unit larger than the default piece: a piece is one unit.
  CHECK(copy_piece_bytes(big, 40 << 20) == size_t{40} << 20);
}
