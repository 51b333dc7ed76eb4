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
  if (bytes < kMappedFrom) {
    size_ = bytes == 0 ? kAlignment : (bytes + kAlignment - 1) / kAlignment * kAlignment;
    data_ = static_cast<uint8_t*>(std::aligned_alloc(kAlignment, size_));
    if (data_ == nullptr) out_of_memory(bytes, ENOMEM);
    return;
  }
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes > SIZE_MAX - page) out_of_memory(bytes, ENOMEM);
  size_ = (bytes + page - 1) / page * page;
  void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) out_of_memory(bytes, errno);
  data_ = static_cast<uint8_t*>(p);
  mapped_ = true;
  // 4 KB pages even where transparent huge pages are "always" (see the
  // header). Advice only: where it fails the memory works the same.
  ::madvise(data_, size_, MADV_NOHUGEPAGE);
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
