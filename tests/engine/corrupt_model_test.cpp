// Corrupt model files through the whole loader (Model::load, then a Session
// run): a valid .rvlt truncated at every length up to 64 KiB and at a spread
// of lengths after, and with bytes flipped at random positions, with the
// checksum on (the default) and off (so the flips reach the structural and
// semantic checks behind it). Each file must be refused with an Error, or
// load and run to a result of the declared shape; never crash (CI runs this
// under AddressSanitizer and UndefinedBehaviorSanitizer too).
//
// RAVLT_CORRUPT_FLIPS sets the number of flipped files (default 10000).
#include <doctest/doctest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "ravlt/model.h"
#include "tests/test_util.h"

using namespace ravlt;
using ravlt::test::read_file;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

// The file under test lives in memory (memfd): truncating and flipping it in
// place costs no disk I/O, and Model::load opens it by its /proc path.
class MemoryFile {
 public:
  MemoryFile() : fd_(memfd_create("corrupt-model", 0)) {
    REQUIRE(fd_ >= 0);
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { close(fd_); }
  void assign(const std::vector<uint8_t>& bytes) {
    REQUIRE(ftruncate(fd_, 0) == 0);
    write_at(0, bytes.data(), bytes.size());
  }
  void truncate(size_t size) { REQUIRE(ftruncate(fd_, static_cast<off_t>(size)) == 0); }
  void write_at(size_t offset, const uint8_t* data, size_t size) {
    REQUIRE(pwrite(fd_, data, size, static_cast<off_t>(offset)) == static_cast<ssize_t>(size));
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// What happened to one corrupt file.
enum class Outcome { kRefusedAtLoad, kRefusedAtRun, kRanSame, kRanDifferent };

struct Reference {
  std::vector<int64_t> shape{2, 3, 19, 23};  // batch 2, odd sizes
  std::vector<float> input;
  std::vector<float> logits;
};

Outcome load_and_run(const std::string& path, bool checksum, const Reference& ref) {
  std::shared_ptr<const Model> model;
  LoadOptions options;
  options.verify_checksum = checksum;
  try {
    model = Model::load(path, options);
  } catch (const Error& e) {
    REQUIRE(std::strlen(e.what()) > 0);
    return Outcome::kRefusedAtLoad;
  }
  try {
    Session session(model, SessionOptions{1});
    const auto out = session.run(ref.input.data(), ref.shape);
    // The graph may legally compute something else (a flipped weight or
    // epsilon), but the result has the declared shape.
    REQUIRE(out.size() == static_cast<size_t>(ref.shape[0]) * model->num_classes());
    if (out.size() == ref.logits.size() &&
        std::memcmp(out.data(), ref.logits.data(), out.size() * sizeof(float)) == 0) {
      return Outcome::kRanSame;
    }
    return Outcome::kRanDifferent;
  } catch (const Error& e) {
    REQUIRE(std::strlen(e.what()) > 0);
    return Outcome::kRefusedAtRun;
  }
}

struct Tally {
  int counts[4] = {};
  void add(Outcome o) { ++counts[static_cast<int>(o)]; }
  int refused() const { return counts[0] + counts[1]; }
  std::string text() const {
    return std::to_string(counts[0]) + " refused at load, " + std::to_string(counts[1]) +
           " refused when planned, " + std::to_string(counts[2]) + " ran to the original result, " +
           std::to_string(counts[3]) + " ran to another result";
  }
};

Reference reference_run(const std::string& path) {
  Reference ref;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  ref.input.resize(static_cast<size_t>(ref.shape[0] * ref.shape[1] * ref.shape[2] * ref.shape[3]));
  for (float& v : ref.input) v = normal(rng);
  Session session(Model::load(path), SessionOptions{1});
  const auto out = session.run(ref.input.data(), ref.shape);
  ref.logits.assign(out.begin(), out.end());
  return ref;
}

// The custom test model converted into a folder: its path, its bytes, and
// its results on the reference input.
struct Converted {
  std::string path;
  std::vector<uint8_t> bytes;
  Reference ref;
};

Converted convert_custom(const TempDir& dir) {
  Converted c;
  c.path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), c.path);
  c.bytes = read_file(c.path);
  c.ref = reference_run(c.path);
  return c;
}

}  // namespace

TEST_CASE("a truncated model file is refused at every length, checksum on or off") {
  TempDir dir;
  const auto [good, full, ref] = convert_custom(dir);
  REQUIRE(full.size() > 256 * 1024);

  // Every length below 64 KiB, then 512 lengths spread over the rest and the
  // last 64 (footer and the final weights).
  std::vector<size_t> lengths;
  for (size_t n = 0; n < 65536; ++n) lengths.push_back(n);
  for (int i = 0; i < 512; ++i) lengths.push_back(65536 + (full.size() - 65536) * i / 512);
  for (size_t n = full.size() - 64; n < full.size(); ++n) lengths.push_back(n);
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());

  MemoryFile file;
  file.assign(full);
  Tally tally;
  // Longest first: each shorter file is a truncate() of the one before.
  for (auto it = lengths.rbegin(); it != lengths.rend(); ++it) {
    file.truncate(*it);
    INFO("length " << *it);
    for (bool checksum : {true, false}) {
      const Outcome o = load_and_run(file.path(), checksum, ref);
      REQUIRE(o == Outcome::kRefusedAtLoad);
      tally.add(o);
    }
  }
  MESSAGE(lengths.size() << " lengths x checksum on/off: " << tally.text());
}

TEST_CASE("flipped bytes: refused, or the file runs to a result of the declared shape") {
  TempDir dir;
  const auto [good, full, ref] = convert_custom(dir);
  uint32_t metadata_size;
  std::memcpy(&metadata_size, full.data(), 4);
  const size_t metadata_end = 4 + metadata_size;

  const char* env = std::getenv("RAVLT_CORRUPT_FLIPS");
  const int flips = env != nullptr ? std::atoi(env) : 10000;
  std::mt19937 rng(11);
  MemoryFile file;
  file.assign(full);
  Tally with_checksum, metadata_flips, data_flips;
  for (int i = 0; i < flips; ++i) {
    // Three in four land in the metadata (the FlatBuffer: offsets, shapes,
    // attributes), where the structural checks must hold; the rest anywhere.
    const size_t limit = i % 4 != 3 ? metadata_end : full.size();
    const size_t pos = rng() % limit;
    const uint8_t mask = static_cast<uint8_t>(1 + rng() % 255);
    const uint8_t flipped = full[pos] ^ mask;
    file.write_at(pos, &flipped, 1);
    INFO("byte " << pos << " xor " << int(mask));
    const Outcome checked = load_and_run(file.path(), true, ref);
    REQUIRE(checked == Outcome::kRefusedAtLoad);  // the checksum covers every byte
    with_checksum.add(checked);
    (pos < metadata_end ? metadata_flips : data_flips).add(load_and_run(file.path(), false, ref));
    file.write_at(pos, &full[pos], 1);
  }
  MESSAGE(flips << " files with one byte flipped; checksum on: " << with_checksum.text());
  MESSAGE("checksum off, flip in the metadata: " << metadata_flips.text());
  MESSAGE("checksum off, flip in the weights or footer: " << data_flips.text());
  // A flip in the weights is found by the checksum only: with it off, most run.
  CHECK(data_flips.counts[static_cast<int>(Outcome::kRanDifferent)] > 0);
  CHECK(metadata_flips.refused() > 0);
}

TEST_CASE("a model file written after it was loaded: plans and runs refuse, and say why") {
  TempDir dir;
  const auto [path, full, ref] = convert_custom(dir);
  const std::vector<int64_t> other{1, 3, 32, 40};
  const std::vector<float> other_input(3 * 32 * 40, 0.25f);
  // The file's timestamps move by the filesystem's tick (a few ms): a
  // write right after the load could keep the time it was loaded at.
  const auto after_a_tick = [] { usleep(50 * 1000); };

  SUBCASE("another file renamed over the path: the loaded one runs on, unchanged") {
    const auto model = Model::load(path);
    Session session(model, SessionOptions{1});
    session.run(ref.input.data(), ref.shape);
    const std::string replacement = dir.file("replacement.rvlt");
    std::vector<uint8_t> damaged = full;
    damaged[full.size() / 2] ^= 0xff;
    test::write_file(replacement, damaged);
    after_a_tick();
    REQUIRE(std::rename(replacement.c_str(), path.c_str()) == 0);
    const auto out = session.run(ref.input.data(), ref.shape);
    CHECK(std::equal(out.begin(), out.end(), ref.logits.begin(), ref.logits.end()));
    CHECK_NOTHROW(session.run(other_input.data(), other));  // a new plan reads it too
    CHECK_THROWS_AS(Model::load(path), Error);              // the new file is the damaged one
  }
  SUBCASE("bytes written into it, or the file shortened: the next run and plan refuse") {
    for (const bool shorten : {false, true}) {
      CAPTURE(shorten);
      test::write_file(path, full);
      const auto model = Model::load(path);
      Session session(model, SessionOptions{1});
      session.run(ref.input.data(), ref.shape);
      after_a_tick();
      if (shorten) {
        REQUIRE(::truncate(path.c_str(), static_cast<off_t>(full.size() / 2)) == 0);
      } else {
        FILE* f = std::fopen(path.c_str(), "r+b");
        REQUIRE(f != nullptr);
        REQUIRE(std::fseek(f, static_cast<long>(full.size() / 2), SEEK_SET) == 0);
        const uint8_t zeros[64] = {};
        REQUIRE(std::fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros);
        REQUIRE(std::fclose(f) == 0);
      }
      // Never the bytes written (unverified), never a read past the new
      // end (which would end the process): an error naming the file.
      const std::string want = path + ": the file was written after it was opened";
      CHECK_THROWS_WITH_AS(session.run(ref.input.data(), ref.shape),
                           doctest::Contains(want.c_str()), Error);
      CHECK_THROWS_WITH_AS(session.run(other_input.data(), other), doctest::Contains(want.c_str()),
                           Error);
      CHECK_THROWS_WITH_AS(Session(model, SessionOptions{2}).plan(ref.shape),
                           doctest::Contains("open it again"), Error);
    }
  }
}
