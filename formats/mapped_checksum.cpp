// Most of a checksum's time over a freshly mapped file is mapping its pages,
// not hashing them (RAVLT-T's 60 MB with the page cache warm: 8-10 ms
// faulting page by page, 3.2 ms to hash pages already mapped). So each
// part is mapped in one call first (MappedFile::populate), and where the
// check is alone on the machine a second thread maps parts ahead of the
// hash. 2-core AMD Zen 5 guest, `ravlt bench` alternated with the build
// before, medians: open + verify RAVLT-T 9.7 -> 6.3 ms (15 rounds), S 13.5
// -> 11.8 (11); open to first logits 0.95x and 0.93x (bench/ab.py --metric
// ready, 11 rounds). Mapping ahead from the file's end instead, towards
// the hash, gained almost nothing (a standalone loop: T 8.1-9.1 against
// 7.9-10.2 ms). A checksum by parts (checksum.h) needs no such helper:
// every thread maps and hashes parts of its own.
#include "formats/mapped_checksum.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

namespace ravlt {
namespace {

// Parts hashed (and mapped) at a time.
constexpr uint64_t kPart = uint64_t{4} << 20;
// From this size up a second thread maps parts ahead (kKeepPages): smaller,
// the thread's start is a large part of the gain.
constexpr uint64_t kMapAheadFrom = uint64_t{16} << 20;

// The parts of a file to map before they are hashed, claimed in order by
// whichever thread comes first: the hashing one only while the part it
// needs next is not mapped yet.
class PartsToMap {
 public:
  PartsToMap(const MappedFile& file, uint64_t end)
      : file_(file), end_(end), count_((end + kPart - 1) / kPart), mapped_(count_) {}

  // Maps the next unclaimed part; false when none is left.
  bool map_next() {
    const uint64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_) return false;
    const uint64_t at = i * kPart;
    file_.populate(file_.data() + at, std::min(kPart, end_ - at));
    mapped_[i].store(true, std::memory_order_release);
    return true;
  }
  // Returns once part i is mapped, mapping the next ones meanwhile.
  void wait_for(uint64_t i) {
    while (!mapped_[i].load(std::memory_order_acquire)) {
      if (!map_next()) std::this_thread::yield();  // the other thread is mapping it
    }
  }

 private:
  const MappedFile& file_;
  const uint64_t end_, count_;
  std::atomic<uint64_t> next_{0};
  std::vector<std::atomic<bool>> mapped_;
};

// ChecksumScheme::kWhole: one hash over the bytes in order.
uint64_t whole_checksum(const MappedFile& file, uint64_t end, AfterHashing after) {
  const bool release = after == AfterHashing::kReleasePages;
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) throw std::bad_alloc();
  PartsToMap parts(file, end);
  std::thread helper;
  if (!release && end >= kMapAheadFrom && std::thread::hardware_concurrency() > 1) {
    try {
      helper = std::thread([&parts] {
        while (parts.map_next()) {
        }
      });
    } catch (const std::system_error&) {
      // No thread to be had: this one maps every part itself.
    }
  }
  XXH3_64bits_reset(state);
  for (uint64_t at = 0; at < end; at += kPart) {
    const uint64_t n = std::min(kPart, end - at);
    parts.wait_for(at / kPart);
    XXH3_64bits_update(state, file.data() + at, n);
    if (release) file.release(file.data() + at, n);
  }
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  if (helper.joinable()) helper.join();
  return digest;
}

// ChecksumScheme::kParts: each thread claims the next part, maps it and
// hashes it.
uint64_t parts_checksum(const MappedFile& file, uint64_t end, AfterHashing after) {
  const bool release = after == AfterHashing::kReleasePages;
  const uint64_t count = (end + kChecksumPartBytes - 1) / kChecksumPartBytes;
  std::vector<uint64_t> digests(count);
  std::atomic<uint64_t> next{0};
  auto hash_parts = [&] {
    for (uint64_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      const uint8_t* part = file.data() + i * kChecksumPartBytes;
      const uint64_t n = std::min(kChecksumPartBytes, end - i * kChecksumPartBytes);
      file.populate(part, n);
      digests[i] = XXH3_64bits(part, n);
      if (release) file.release(part, n);
    }
  };
  std::vector<std::thread> helpers;
  if (!release) {
    const uint64_t threads = std::min<uint64_t>(
        {std::max(1u, std::thread::hardware_concurrency()), kMaxChecksumThreads, count});
    try {
      while (helpers.size() + 1 < threads) helpers.emplace_back(hash_parts);
    } catch (const std::system_error&) {
      // Fewer threads to be had: those started (and this one) hash every part.
    }
  }
  hash_parts();
  for (std::thread& t : helpers) t.join();
  return checksum_of_part_digests(digests);
}

}  // namespace

uint64_t mapped_checksum(const MappedFile& file, uint64_t end, AfterHashing after,
                         ChecksumScheme scheme) {
  end = std::min<uint64_t>(end, file.size());
  return scheme == ChecksumScheme::kWhole ? whole_checksum(file, end, after)
                                          : parts_checksum(file, end, after);
}

bool checksum_matches(const MappedFile& file, uint64_t end, AfterHashing after,
                      ChecksumScheme scheme, uint64_t recorded) {
  if (mapped_checksum(file, end, after, scheme) != recorded) return false;
  if (scheme == ChecksumScheme::kWhole) return true;
  return XXH3_64bits(file.data() + end, part_table_bytes(end, scheme)) == recorded;
}

}  // namespace ravlt
