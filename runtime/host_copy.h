// Copies of large host buffers on several threads: a GPU session's input
// into page-locked staging memory before its transfer, and the outputs out
// of it. One thread's memcpy moves of the order of 10 GB/s, well under
// what a server's memory gives several (a batch of 256 images at 224 x 224
// is 154 MB of float32: some 15 ms on one thread; not yet measured on the
// GPU machine).
#pragma once

#include <cstddef>

namespace ravlt::runtime {

/// Below this many bytes a copy stays on the calling thread: starting the
/// others costs more than they save.
inline constexpr size_t kParallelCopyFrom = size_t{1} << 20;

/// memcpy(dst, src, bytes) on up to `threads` threads (0: all cores), each
/// a contiguous share of whole 64-byte lines but the last. The buffers must
/// not overlap; with `bytes` 0 either may be null.
void parallel_copy(void* dst, const void* src, size_t bytes, int threads);

/// The pieces a copy of `bytes` is made in when each piece's transfer is to
/// overlap the next piece's copy: `piece` bytes each (a multiple of
/// `unit`, at least one unit), the last one shorter. Returns `bytes` itself
/// when one piece is enough.
size_t copy_piece_bytes(size_t bytes, size_t unit);

}  // namespace ravlt::runtime
