// Host buffers: small ones from the heap, large ones 2 MB aligned mappings;
// every one aligned, writable and freed; an impossible size is an Error.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "ravlt/error.h"
#include "runtime/host_pages.h"

using namespace ravlt;
using runtime::HostPages;

namespace {

bool aligned(const void* p, size_t to) {
  return reinterpret_cast<uintptr_t>(p) % to == 0;
}

// How many of the system pages in [p, p + bytes) are resident.
size_t resident_pages(const uint8_t* p, size_t bytes) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in_core((bytes + page - 1) / page);
  REQUIRE(::mincore(const_cast<uint8_t*>(p), bytes, in_core.data()) == 0);
  size_t count = 0;
  for (unsigned char c : in_core) count += c & 1;
  return count;
}

}  // namespace

TEST_CASE("small host buffers are 64-byte aligned and hold what was asked") {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{100}, size_t{4096}, HostPages::kHugePage - 1}) {
    CAPTURE(bytes);
    HostPages p(bytes);
    REQUIRE(p.data() != nullptr);
    CHECK(aligned(p.data(), 64));
    CHECK(p.size() >= bytes);
    std::memset(p.data(), 0x5a, p.size());
    CHECK(p.data()[p.size() - 1] == 0x5a);
  }
}

TEST_CASE("large host buffers are 2 MB aligned, zero-filled, and cover the request") {
  const size_t bytes = 3 * HostPages::kHugePage + 123;
  HostPages p(bytes);
  REQUIRE(p.data() != nullptr);
  CHECK(aligned(p.data(), HostPages::kHugePage));
  CHECK(p.size() >= bytes);
  CHECK(p.size() < bytes + 4096 * 16);
  CHECK(p.data()[0] == 0);
  CHECK(p.data()[bytes - 1] == 0);
  std::memset(p.data(), 0x33, p.size());
  CHECK(p.data()[p.size() - 1] == 0x33);
}

TEST_CASE("a large mapping measures both kinds of page on its first 4 MB, a smaller one not") {
  // The first 2 MB is touched as a huge page, the next as 4 KB pages (the
  // faster kind makes the rest resident); nothing else is touched.
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t probe = 2 * HostPages::kHugePage;
  HostPages large(8 * HostPages::kHugePage);
  CHECK(resident_pages(large.data(), probe) == probe / page);
  HostPages smaller(probe - page);
  CHECK(resident_pages(smaller.data(), smaller.size()) == 0);
  std::memset(large.data(), 0x11, large.size());
  CHECK(large.data()[large.size() - 1] == 0x11);
}

TEST_CASE("host buffers move without copying and free once") {
  HostPages a(3 * HostPages::kHugePage);
  uint8_t* data = a.data();
  HostPages b(std::move(a));
  CHECK(b.data() == data);
  CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state
  HostPages c(16);
  c = std::move(b);
  CHECK(c.data() == data);
  c = HostPages(8);  // frees the mapping, takes a heap block
  CHECK(c.data() != nullptr);
}

TEST_CASE("a host buffer the system cannot provide is an Error naming its size") {
  CHECK_THROWS_WITH_AS(HostPages(SIZE_MAX - 5), doctest::Contains("out of memory allocating"),
                       Error);
  // Past any address space: the mapping itself fails.
  CHECK_THROWS_WITH_AS(HostPages(size_t{1} << 62), doctest::Contains("4611686018427387904 bytes"),
                       Error);
}
