// Host buffers for a plan's arena and the packed weights: from 2 MB up,
// mapped straight from the kernel, 2 MB aligned and advised to be backed by
// transparent huge pages; smaller ones from the C heap (reused memory that
// is often already touched).
//
// Why: fresh memory costs a page fault at its first touch, about 2.5 us
// per 4 KB page on the machines we measured (a virtual machine charging
// every page to its cgroup). A 60 MB model's packed weights spent 35 ms in
// such faults, more than their reorder itself; with 2 MB pages the same
// memory is ready in about 12 ms. Where the system refuses huge pages
// (transparent_hugepage "never"), the advice is ignored and the memory is
// ordinary.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ravlt::runtime {

/// At least `bytes` of writable memory (64 bytes when `bytes` is 0),
/// 64-byte aligned; from kHugePage up, a mapping of whole pages, 2 MB
/// aligned, zero-filled. Freed with the object. Throws ravlt::Error naming
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

  /// The size from which the memory is a 2 MB aligned mapping advised to
  /// use huge pages.
  static constexpr size_t kHugePage = size_t{2} << 20;

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // else from aligned_alloc
};

}  // namespace ravlt::runtime
