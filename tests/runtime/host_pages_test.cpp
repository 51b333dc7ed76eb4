// Host buffers: small ones from the heap, large ones 2 MB aligned mappings;
// every one aligned, writable and freed; an impossible size is an Error.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "ravlt/error.h"
#include "runtime/host_pages.h"

using namespace ravlt;
using runtime::HostPages;

namespace {

bool aligned(const void* p, size_t to) {
  return reinterpret_cast<uintptr_t>(p) % to == 0;
}

// The VmFlags line of /proc/self/smaps for the mapping holding `p`.
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t from = 0, to = 0;
    // A mapping's first line: "from-to perms ..."; its fields follow.
    if (std::sscanf(line.c_str(), "%lx-%lx ", &from, &to) == 2) inside = at >= from && at < to;
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

}  // namespace

TEST_CASE("small host buffers are 64-byte aligned and hold what was asked") {
  for (size_t bytes :
       {size_t{0}, size_t{1}, size_t{100}, size_t{4096}, HostPages::kMappedFrom - 1}) {
    CAPTURE(bytes);
    HostPages p(bytes);
    REQUIRE(p.data() != nullptr);
    CHECK(aligned(p.data(), 64));
    CHECK(p.size() >= bytes);
    std::memset(p.data(), 0x5a, p.size());
    CHECK(p.data()[p.size() - 1] == 0x5a);
  }
}

TEST_CASE("large host buffers are page aligned, zero-filled, and cover the request") {
  const size_t bytes = 3 * HostPages::kMappedFrom + 123;
  HostPages p(bytes);
  REQUIRE(p.data() != nullptr);
  CHECK(aligned(p.data(), 4096));
  CHECK(p.size() >= bytes);
  CHECK(p.size() < bytes + 4096 * 16);
  CHECK(p.data()[0] == 0);
  CHECK(p.data()[bytes - 1] == 0);
  std::memset(p.data(), 0x33, p.size());
  CHECK(p.data()[p.size() - 1] == 0x33);
}

TEST_CASE("a large host buffer is on 4 KB pages (no huge page advice)") {
  // VmFlags "nh": MADV_NOHUGEPAGE (host_pages.h says why). A kernel built
  // without transparent huge pages refuses the advice and has none anyway.
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
    MESSAGE("no transparent huge pages on this kernel: nothing to check");
    return;
  }
  HostPages large(8 * HostPages::kMappedFrom);
  const std::string flags = vm_flags_of(large.data());
  REQUIRE(!flags.empty());
  CHECK(flags.find(" nh") != std::string::npos);
  CHECK(flags.find(" hg") == std::string::npos);
}

TEST_CASE("host buffers move without copying and free once") {
  HostPages a(3 * HostPages::kMappedFrom);
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
