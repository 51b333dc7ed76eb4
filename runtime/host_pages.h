// Host buffers for a plan's arena and the packed weights: from 2 MB up,
// mapped straight from the kernel on 4 KB pages; smaller ones from the C
// heap (reused memory that is often already touched).
//
// Why 4 KB pages: a first touch of fresh memory costs a page fault, and on
// a virtual machine whose kernel hands free memory back to its hypervisor
// (free page reporting, in free blocks of 2 MB and up) a fresh 2 MB page
// cost 0.2 ms when reused soon after a free but 5 ms once handed back (the
// host faulting each piece in), while 4 KB pages, drawn from smaller free
// blocks that are never handed back, cost a steady 0.8-1 ms per 2 MB. AMD
// Zen 4 guest, open + plan + first run alternated with the 2 MB build
// (bench/ab.py --metric ready): after a pause of 4 s, RAVLT-T batch 1 154
// -> 113 ms, S 273 -> 154 ms (0.57-0.77x at batch 1 and 8); right after
// another run 0.81-1.14x, within that host's noise; run time no different
// beyond the noise (0.99-1.01x in 8 rounds; the weights and the arena are
// streamed). Timing a huge and a small page
// at allocation to choose did not help: the first huge pages come from the
// most recently freed memory and looked cheap while the rest was not. An
// earlier measurement on an Intel Xeon host found 2 MB pages faster there
// (a 60 MB model's packed weights: 12 against 35 ms of faults).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ravlt::runtime {

/// At least `bytes` of writable memory (64 bytes when `bytes` is 0),
/// 64-byte aligned; from kMappedFrom up, a mapping of whole pages,
/// zero-filled. Freed with the object. Throws ravlt::Error naming
/// the size when the system cannot provide it. Contents start undefined.
class HostPages {
 public:
  HostPages() = default;
  explicit HostPages(size_t bytes);
  ~HostPages();
  HostPages(HostPages&& other) noexcept;
  HostPages& operator=(HostPages&& other) noexcept;
  HostPages(const HostPages&) = delete;
  HostPages& operator=(const HostPages&) = delete;

  uint8_t* data() const { return data_; }
  /// The usable bytes (at least the request).
  size_t size() const { return size_; }

  /// The size from which the memory is a mapping of its own.
  static constexpr size_t kMappedFrom = size_t{2} << 20;

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // else from aligned_alloc
};

}  // namespace ravlt::runtime
