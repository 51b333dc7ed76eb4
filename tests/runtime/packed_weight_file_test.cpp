// The packed-weight file: what is written reads back, and a file that is
// damaged, cut short, or made for another model or build is refused whole
// with the reason (never read outside the mapping).
#include <doctest/doctest.h>

#include <cstring>

#include "ravlt/error.h"
#include "runtime/cpu/packed_weight_file.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::runtime::cpu;
using ravlt::test::read_file;
using ravlt::test::TempDir;
using ravlt::test::write_file;

namespace {

constexpr uint64_t kModel = 0x1234, kBuild = 0x5678, kParts = 0x9abcdef;

struct Written {
  std::vector<std::vector<uint8_t>> data;
  std::vector<PackedWeight> weights;
};

Written some_weights() {
  Written w;
  for (size_t i = 0; i < 3; ++i) {
    std::vector<uint8_t> bytes(100 + 1000 * i);
    for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<uint8_t>(k * 7 + i);
    w.data.push_back(std::move(bytes));
  }
  for (size_t i = 0; i < 3; ++i) {
    w.weights.push_back({static_cast<uint32_t>(10 + i), 100 + i, 200 + i, w.data[i]});
  }
  return w;
}

// Rewrites the part table and the footer's checksum after an edit (of a
// file under 4 MiB: one part), so that the checks behind them are reached.
void reseal(std::vector<uint8_t>& bytes) {
  const size_t checksummed = bytes.size() - 16 - 8;
  const std::vector<uint8_t> table = test::part_table(bytes.data(), checksummed);
  REQUIRE(table.size() == 8);
  std::copy(table.begin(), table.end(), bytes.begin() + static_cast<long>(checksummed));
  const uint64_t h = XXH3_64bits(table.data(), table.size());
  for (int b = 0; b < 8; ++b) bytes[bytes.size() - 8 + b] = static_cast<uint8_t>(h >> (8 * b));
}

}  // namespace

TEST_CASE("packed weights read back as written, each at a 64-byte aligned address") {
  TempDir dir;
  const std::string path = dir.file(packed_weight_file_name(kModel, kBuild));
  CHECK(path.ends_with("0000000000001234-0000000000005678.rvltpack"));
  const Written w = some_weights();
  write_packed_weight_file(path, kModel, kBuild, kParts, w.weights);
  const PackedWeightFile file = PackedWeightFile::open(path, kModel, kBuild);
  CHECK(file.model_parts_checksum() == kParts);
  REQUIRE(file.weights().size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const PackedWeight& got = file.weights()[i];
    CHECK(got.value == w.weights[i].value);
    CHECK(got.source_key == w.weights[i].source_key);
    CHECK(got.packed_key == w.weights[i].packed_key);
    REQUIRE(got.bytes.size() == w.data[i].size());
    CHECK(std::memcmp(got.bytes.data(), w.data[i].data(), w.data[i].size()) == 0);
    CHECK(reinterpret_cast<uintptr_t>(got.bytes.data()) % 64 == 0);
  }
  // No temporary file is left beside it.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    files += e.is_regular_file();
  CHECK(files == 1);
  // An empty list is a valid file too.
  write_packed_weight_file(path, kModel, kBuild, kParts, {});
  CHECK(PackedWeightFile::open(path, kModel, kBuild).weights().empty());
}

TEST_CASE(
    "a packed-weight file of another model or build, or damaged, is refused with the reason") {
  TempDir dir;
  const std::string path = dir.file("w.rvltpack");
  write_packed_weight_file(path, kModel, kBuild, kParts, some_weights().weights);
  const std::vector<uint8_t> good = read_file(path);
  auto refused = [&](const std::vector<uint8_t>& bytes, const std::string& why) {
    write_file(path, bytes);
    CHECK_THROWS_WITH_AS(PackedWeightFile::open(path, kModel, kBuild),
                         doctest::Contains(why.c_str()), Error);
  };
  CHECK_THROWS_WITH_AS(PackedWeightFile::open(path, kModel + 1, kBuild),
                       doctest::Contains("made for another model"), Error);
  CHECK_THROWS_WITH_AS(PackedWeightFile::open(path, kModel, kBuild + 1),
                       doctest::Contains("made by another engine or oneDNN build"), Error);
  CHECK_THROWS_WITH_AS(PackedWeightFile::open(dir.file("missing"), kModel, kBuild),
                       doctest::Contains("cannot open"), Error);

  // Every length short of the whole file.
  for (size_t n = 1; n < good.size(); n += (n < 200 ? 1 : 97)) {
    write_file(path, std::vector<uint8_t>(good.begin(), good.begin() + static_cast<ptrdiff_t>(n)));
    CHECK_THROWS_AS(PackedWeightFile::open(path, kModel, kBuild), Error);
  }
  // One flipped bit anywhere: the checksum (or the framing) refuses it.
  for (size_t at = 0; at < good.size(); at += 13) {
    std::vector<uint8_t> bad = good;
    bad[at] ^= 0x10;
    write_file(path, bad);
    CHECK_THROWS_AS(PackedWeightFile::open(path, kModel, kBuild), Error);
  }
  std::vector<uint8_t> bad = good;
  bad[good.size() / 2] ^= 1;
  refused(bad, "checksum mismatch");
  bad = good;
  bad[good.size() - 16 - 3] ^= 1;  // the part table, its bytes' digests intact
  refused(bad, "checksum mismatch");
  bad = good;
  bad[0] = 'X';
  refused(bad, "not a packed-weight file");
  bad = good;
  bad[good.size() - 16] = 'X';
  refused(bad, "truncated (no footer)");
  bad = good;
  bad[8] = 9;  // format version
  refused(bad, "another format version");

  // Behind a valid checksum: a weight past the data section, an unaligned
  // one, a data section that is not where the header says.
  bad = good;
  bad[64 + 40 * 2 + 24] = 0xF0;  // third weight's offset, far out
  bad[64 + 40 * 2 + 25] = 0xFF;
  reseal(bad);
  refused(bad, "weight 2 lies outside the data section");
  bad = good;
  bad[64 + 40 + 24] += 1;  // second weight's offset, off its alignment
  reseal(bad);
  refused(bad, "weight 1 lies outside the data section");
  bad = good;
  bad[32] = 1;  // the data section offset, off its page
  reseal(bad);
  refused(bad, "the data section is not where the header says");
  bad = good;
  bad[12] = 0xFF, bad[13] = 0xFF, bad[14] = 0xFF, bad[15] = 0xFF;  // entries past the data offset
  reseal(bad);
  refused(bad, "the data section is not where the header says");
}

TEST_CASE("a write into a directory that cannot hold it says why and leaves nothing") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(
      write_packed_weight_file(dir.file("no/such/dir/w.rvltpack"), kModel, kBuild, kParts, {}),
      doctest::Contains("cannot create"), Error);
}

TEST_CASE("layout keys tell layouts apart and ignore nothing that places an element") {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const dnnl::memory::desc ab({64, 32}, dt::f32, tag::ab), ba({64, 32}, dt::f32, tag::ba),
      ab16({64, 32}, dt::bf16, tag::ab), other({32, 64}, dt::f32, tag::ab),
      blocked({64, 32}, dt::f32, tag::AB16b16a);
  REQUIRE(layout_key(ab));
  CHECK(*layout_key(ab) == *layout_key(dnnl::memory::desc({64, 32}, dt::f32, tag::ab)));
  for (const auto* d : {&ba, &ab16, &other, &blocked}) {
    REQUIRE(layout_key(*d));
    CHECK(*layout_key(*d) != *layout_key(ab));
  }
  CHECK(*layout_key(blocked) != *layout_key(ba));
  CHECK_FALSE(layout_key(dnnl::memory::desc({64, 32}, dt::f32, tag::any)));
}
