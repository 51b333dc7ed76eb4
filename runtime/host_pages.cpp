#include "runtime/host_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "ravlt/error.h"

namespace ravlt::runtime {
namespace {

constexpr size_t kAlignment = 64;

[[noreturn]] void out_of_memory(size_t bytes, int err) {
  throw Error("out of memory allocating " + std::to_string(bytes) + " bytes (" +
              std::strerror(err) + ")");
}

// Touches one byte of every 4 KB in [p, p + bytes) and returns how long
// that took: the cost of the page faults that make it resident.
std::chrono::steady_clock::duration first_touch(uint8_t* p, size_t bytes) {
  const auto start = std::chrono::steady_clock::now();
  for (size_t at = 0; at < bytes; at += 4096) {
    *static_cast<volatile uint8_t*>(p + at) = 0;
  }
  return std::chrono::steady_clock::now() - start;
}

// Which pages make the rest of a large mapping resident sooner: the first
// 2 MB is touched as one huge page, the next 2 MB as 4 KB pages, and the
// rest takes the faster kind. Why measure: the cost of a fresh huge page
// depends on the host. On a virtual machine whose kernel hands free memory
// back to its hypervisor (free page reporting, in blocks of 2 MB and up), a
// huge page reused soon after a free took 0.23 ms, one handed back 5 ms
// (0.4 GB/s: the host faulting each piece in), while 4 KB pages, drawn from
// smaller free blocks the guest never reports, took a steady 1 ms per 2 MB
// (AMD Zen 4 guest: RAVLT-T's plan 98 ms with huge pages against 52 ms
// after a pause of 4 s, 35 against 48 ms right after another run). On
// other hosts huge pages measured three times faster than 4 KB pages. The
// kind of page made no difference to run time (the packed weights and the
// arena stream through; alternated runs within 1 %).
void choose_page_kind(uint8_t* data, size_t size) {
  constexpr size_t kHuge = HostPages::kHugePage;
  if (size < 2 * kHuge) return;  // too small to measure both: huge pages
  const auto huge = first_touch(data, kHuge);
  ::madvise(data + kHuge, size - kHuge, MADV_NOHUGEPAGE);
  const auto small = first_touch(data + kHuge, kHuge);
  if (huge <= small && size > 2 * kHuge) {
    ::madvise(data + 2 * kHuge, size - 2 * kHuge, MADV_HUGEPAGE);
  }
}

}  // namespace

HostPages::HostPages(size_t bytes) {
  if (bytes < kHugePage) {
    size_ = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, size_));
    if (data_ == nullptr) out_of_memory(bytes, ENOMEM);
    return;
  }
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes > SIZE_MAX - 2 * kHugePage) out_of_memory(bytes, ENOMEM);
  size_ = (bytes + page - 1) / page * page;
  // One huge page more than asked, so that a 2 MB aligned start exists
  // inside the mapping; what lies before and after it is given back.
  const size_t mapped = size_ + kHugePage;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) out_of_memory(bytes, errno);
  auto* base = static_cast<uint8_t*>(p);
  const uintptr_t start = reinterpret_cast<uintptr_t>(base);
  const size_t head = (start + kHugePage - 1) / kHugePage * kHugePage - start;
  const size_t tail = mapped - head - size_;
  if (head > 0) ::munmap(base, head);
  if (tail > 0) ::munmap(base + head + size_, tail);
  data_ = base + head;
  mapped_ = true;
  // Advice only: without transparent huge pages it fails or is ignored,
  // and the memory works the same.
  ::madvise(data_, size_, MADV_HUGEPAGE);
  choose_page_kind(data_, size_);
}

void HostPages::release() {
  if (data_ == nullptr) return;
  if (mapped_) {
    ::munmap(data_, size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
}

HostPages::~HostPages() {
  release();
}

HostPages::HostPages(HostPages&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(other.mapped_) {}

HostPages& HostPages::operator=(HostPages&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = other.mapped_;
  }
  return *this;
}

}  // namespace ravlt::runtime
