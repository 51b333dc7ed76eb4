// Host buffers for a plan's arena and the packed weights: from 2 MB up,
// mapped straight from the kernel, 2 MB aligned, on the kind of page that
// makes them resident sooner on this host; smaller ones from the C heap
// (reused memory that is often already touched).
//
// Why: fresh memory costs a page fault at its first touch, and which page
// size costs less depends on the host. On one virtual machine 4 KB pages
// cost about 2.5 us each (a 60 MB model's packed weights spent 35 ms in
// faults, 12 ms on 2 MB pages); on another, whose kernel hands free memory
// back to its hypervisor, a 2 MB page cost 0.2 ms when reused soon after a
// free and 5 ms once handed back, against a steady 1 ms for 512 pages of 4
// KB. So a mapping of at least 4 MB touches its first 2 MB as a huge page
// and its next 2 MB as small pages, timing both, and advises the rest to
// the faster kind (host_pages.cpp). Where the system refuses huge pages
// (transparent_hugepage "never") the advice is ignored and the memory is
// ordinary.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ravlt::runtime {

/// At least `bytes` of writable memory (64 bytes when `bytes` is 0),
/// 64-byte aligned; from kHugePage up, a mapping of whole pages, 2 MB
/// aligned, zero-filled (from 4 MB up its first 4 MB already resident:
/// the measure of the two kinds of page). Freed with the object. Throws ravlt::Error naming
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

  /// The size from which the memory is a 2 MB aligned mapping that may use
  /// huge pages.
  static constexpr size_t kHugePage = size_t{2} << 20;

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // else from aligned_alloc
};

}  // namespace ravlt::runtime
