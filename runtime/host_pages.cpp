#include "runtime/host_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
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
