// LoadOptions::cache_dir: the first plan writes the model's packed weights,
// a later load uses them instead of packing (the same results, bit for
// bit), and a cache file that is damaged, stale or cannot be written costs
// a packing, never a wrong answer or an error. (One written into after it
// was read, which the runs read in its mapping, is refused at the next run
// instead: the last test.)
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "engine/src/model_impl.h"
#include "formats/rvlt/model_file.h"
#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "ravlt/model.h"
#include "runtime/cpu/cpu_backend.h"
#include "tests/test_util.h"

using namespace ravlt;
using ravlt::test::random_vector;
using ravlt::test::read_file;
using ravlt::test::TempDir;
using ravlt::test::testdata;
using ravlt::test::write_file;

namespace {

const std::vector<int64_t> kShape{2, 3, 45, 37};

struct Result {
  std::vector<float> logits;
  size_t packed = 0;     // bytes reordered by this model's plans
  size_t from_file = 0;  // bytes used from the cache file
  std::string status;
};

Result load_and_run(const std::string& model_path, const std::string& cache_dir,
                    Precision precision = Precision::kFloat32) {
  LoadOptions load;
  load.cache_dir = cache_dir;
  const auto model = Model::load(model_path, load);
  SessionOptions options;
  options.precision = precision;
  Session session(model, options);
  const auto input = random_vector(2 * 3 * 45 * 37, 11);
  const std::span<const float> out = session.run(input.data(), kShape);
  return {{out.begin(), out.end()},
          model->copied_weight_bytes(),
          model->weight_cache_bytes_used(),
          model->weight_cache_status()};
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().string());
  }
  return names;
}

}  // namespace

TEST_CASE("packed weights are written by the first plan and read by the next load") {
  TempDir dir;
  const std::string path = dir.file("t.rvlt"), cache = dir.file("cache/sub");
  convert_checkpoint(testdata("T_bare.pth"), path);
  const size_t file_bytes = std::filesystem::file_size(path);

  const Result plain = load_and_run(path, "");
  const Result first = load_and_run(path, cache);  // the directory is created
  CHECK(first.status.starts_with("written ("));
  CHECK(first.packed > file_bytes * 9 / 10);
  CHECK(first.from_file == 0);
  REQUIRE(files_in(cache).size() == 1);
  CHECK(files_in(cache)[0].ends_with(".rvltpack"));

  const Result second = load_and_run(path, cache);
  CHECK(second.status == "read");
  CHECK(second.packed == 0);  // nothing reordered
  CHECK(second.from_file == first.packed);
  CHECK(second.logits == first.logits);  // the same bytes, bit for bit
  CHECK(second.logits == plain.logits);
  CHECK(files_in(cache).size() == 1);  // read, not rewritten

  // The file serves another thread count and batch too (the same layouts).
  {
    LoadOptions load;
    load.cache_dir = cache;
    const auto model = Model::load(path, load);
    Session session(model, SessionOptions{1});
    const auto input = random_vector(3 * 3 * 64 * 64, 5);
    session.run(input.data(), std::vector<int64_t>{3, 3, 64, 64});
    CHECK(model->copied_weight_bytes() == 0);
    CHECK(model->weight_packing_seconds() == 0);
    CHECK(model->weight_cache_status() == "read");
  }
}

TEST_CASE("a damaged, truncated or stale cache file is packed again and replaced") {
  TempDir dir;
  const std::string path = dir.file("t.rvlt"), other = dir.file("other.rvlt");
  const std::string cache = dir.file("cache");
  convert_checkpoint(testdata("T_bare.pth"), path);
  convert_checkpoint(testdata("custom_bare.pth"), other);
  const Result good = load_and_run(path, cache);
  const std::string cache_file = files_in(cache)[0];
  const std::vector<uint8_t> bytes = read_file(cache_file);

  auto check_repacked = [&](const std::vector<uint8_t>& bad, const std::string& why) {
    CAPTURE(why);
    write_file(cache_file, bad);
    const Result r = load_and_run(path, cache);
    CHECK(r.status.starts_with("not used (" + cache_file + ": " + why));
    CHECK(r.status.find("packed again; written (") != std::string::npos);
    CHECK(r.packed == good.packed);
    CHECK(r.logits == good.logits);
    // ... and the file was replaced by a good one.
    const Result again = load_and_run(path, cache);
    CHECK(again.status == "read");
    CHECK(again.packed == 0);
    CHECK(again.logits == good.logits);
  };
  std::vector<uint8_t> bad = bytes;
  bad[bytes.size() / 3] ^= 4;
  check_repacked(bad, "checksum mismatch");
  check_repacked(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 5000), "truncated");
  check_repacked({}, "file is empty");
  // Another model's packed weights under this model's name.
  const Result r = load_and_run(other, cache);
  REQUIRE(files_in(cache).size() == 2);
  for (const std::string& f : files_in(cache)) {
    if (f != cache_file) check_repacked(read_file(f), "made for another model");
  }
  CHECK(r.status.starts_with("written ("));
}

TEST_CASE("with the cache file, a packed weight's own bytes are verified only when read") {
  TempDir dir;
  const std::string path = dir.file("t.rvlt"), cache = dir.file("cache");
  convert_checkpoint(testdata("T_bare.pth"), path);
  const Result good = load_and_run(path, cache);  // writes the cache file
  // The largest constant (a weight the cache file holds packed) and the
  // smallest (a bias or norm, which it holds as stored: the runs of a plan
  // on packed weights read nothing in the model file); the data section.
  uint32_t weight = 0, small = 0;
  size_t weight_at = 0, weight_bytes = 0, small_at = 0, small_bytes = SIZE_MAX, data_at = 0;
  {
    const auto file = rvlt::ModelFile::open(path);
    data_at = file->data_section_offset();
    for (uint32_t i = 0; i < file->graph().tensors()->size(); ++i) {
      if (!file->graph().tensors()->Get(i)->constant()) continue;
      const auto bytes = file->constant_bytes(i);
      const auto at = static_cast<size_t>(bytes.data() - file->mapping_begin());
      if (bytes.size() > weight_bytes) weight = i, weight_at = at, weight_bytes = bytes.size();
      if (bytes.size() < small_bytes) small = i, small_at = at, small_bytes = bytes.size();
    }
  }
  const std::vector<uint8_t> original = read_file(path);
  for (const bool damage_small : {false, true}) {
    CAPTURE(damage_small);
    const uint32_t value = damage_small ? small : weight;
    std::vector<uint8_t> damaged = original;
    damaged[damage_small ? small_at : weight_at + weight_bytes / 2] ^= 0x10;
    write_file(path, damaged);

    // Neither the load nor a plan the cache file serves reads it: the
    // answer is the undamaged model's, from the cache file's copy.
    const Result served = load_and_run(path, cache);
    CHECK(served.status == "read");
    CHECK(served.packed == 0);
    CHECK(served.logits == good.logits);
    // Without the cache file the whole file is verified at load.
    CHECK_THROWS_WITH_AS(load_and_run(path, ""), doctest::Contains("checksum mismatch"), Error);
    {
      // What reads the constant's bytes (here: asking for its stored
      // layout) verifies the whole file first.
      LoadOptions load;
      load.cache_dir = cache;
      const auto model = Model::load(path, load);
      CHECK(model_impl(*model).graph->file().deferred());
      const runtime::Value& v = model_impl(*model).graph->values()[value];
      const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
      const dnnl::memory::desc stored({runtime::element_count(v.shape)},
                                      dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
      CHECK_THROWS_WITH_AS(model_impl(*model).weights->get(value, v.data, stored, stored, engine),
                           doctest::Contains("checksum mismatch"), Error);
      // ... and so does a kernel that reads it in place, and a plan that
      // reads the constants no kernel packs in place (pack_weights off) as
      // it asks for one (one whose GEMMs all pack, as below AVX-512, would
      // otherwise read them unverified).
      CHECK_THROWS_WITH_AS(model_impl(*model).graph->read_constant(value),
                           doctest::Contains("checksum mismatch"), Error);
      if (damage_small) {
        runtime::cpu::CpuBackend in_place(model_impl(*model).weights);
        in_place.set_weight_packing(false);
        CHECK_THROWS_WITH_AS(in_place.constant(*model_impl(*model).graph, value),
                             doctest::Contains("checksum mismatch"), Error);
      }
    }
    std::string why;
    if (precision_available(Device::kCpu, Precision::kBFloat16, &why)) {
      // A bf16 plan packs the weights anew from their bytes in the file.
      CHECK_THROWS_WITH_AS(load_and_run(path, cache, Precision::kBFloat16),
                           doctest::Contains("checksum mismatch"), Error);
    }
  }

  // Damage outside the constants (the graph, the metadata) is found at load.
  std::vector<uint8_t> damaged = original;
  damaged[data_at - 1] ^= 0x10;
  write_file(path, damaged);
  CHECK_THROWS_WITH_AS(load_and_run(path, cache), doctest::Contains("checksum mismatch"), Error);
  write_file(path, original);
  CHECK(load_and_run(path, cache).logits == good.logits);
}

TEST_CASE("writing the cache removes the model's files of other builds and abandoned writes") {
  namespace fs = std::filesystem;
  TempDir dir;
  const std::string path = dir.file("t.rvlt"), cache = dir.file("cache");
  convert_checkpoint(testdata("T_bare.pth"), path);
  load_and_run(path, cache);
  REQUIRE(files_in(cache).size() == 1);
  const std::string ours = files_in(cache)[0];
  const std::string name = fs::path(ours).filename().string();  // <model>-<build>.rvltpack
  const std::string model = name.substr(0, 17);
  const std::string other_build = model + "0123456789abcdef.rvltpack";
  const std::string old_partial = name + ".partial.12345";
  const std::string fresh_partial = name + ".partial.23456";
  const std::vector<std::string> kept = {
      fresh_partial,                                 // another process writing now
      "ffffffffffffffff-0123456789abcdef.rvltpack",  // another model's
      model + "0123456789abcdef.rvltpack.bak",       // not a name of ours
      model + "0123456789abcdeX.rvltpack",
      name + ".partial.12x",
      "notes.txt"};
  for (const std::string& f : kept) write_file(dir.file("cache/" + f), {1, 2, 3});
  write_file(dir.file("cache/" + other_build), {1, 2, 3});
  write_file(dir.file("cache/" + old_partial), {1, 2, 3});
  fs::last_write_time(dir.file("cache/" + old_partial),
                      fs::file_time_type::clock::now() - std::chrono::hours(2));
  fs::last_write_time(dir.file("cache/" + name + ".partial.12x"),
                      fs::file_time_type::clock::now() - std::chrono::hours(2));

  // Read, not written: nothing is removed.
  CHECK(load_and_run(path, cache).status == "read");
  CHECK(files_in(cache).size() == kept.size() + 3);

  // Written (the file was damaged): the other build's file and the
  // abandoned write go, with the status saying so.
  std::vector<uint8_t> bad = read_file(ours);
  bad[bad.size() / 2] ^= 1;
  write_file(ours, bad);
  const Result r = load_and_run(path, cache);
  CHECK(r.status.find("written (") != std::string::npos);
  CHECK(r.status.ends_with("; removed 2 stale files of this model"));
  std::vector<std::string> want = kept;
  want.push_back(name);
  std::vector<std::string> have;
  for (const std::string& f : files_in(cache)) have.push_back(fs::path(f).filename().string());
  std::sort(want.begin(), want.end());
  std::sort(have.begin(), have.end());
  CHECK(have == want);
  CHECK(load_and_run(path, cache).status == "read");
}

TEST_CASE("a cache directory that cannot be written costs only the packing") {
  TempDir dir;
  const std::string path = dir.file("t.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const Result plain = load_and_run(path, "");
  // Under a regular file: the directory cannot be created.
  const Result r = load_and_run(path, path + "/cache");
  CHECK(r.status.starts_with("not written ("));
  CHECK(r.logits == plain.logits);
  CHECK(plain.status.empty());
}

TEST_CASE("bf16 packed weights are cached beside float32 ones") {
  std::string why;
  if (!precision_available(Device::kCpu, Precision::kBFloat16, &why)) {
    MESSAGE("skipped: this CPU has no bf16: " << why);
    return;
  }
  TempDir dir;
  const std::string path = dir.file("t.rvlt"), cache = dir.file("cache");
  convert_checkpoint(testdata("T_bare.pth"), path);
  const Result f32 = load_and_run(path, cache);
  const Result bf16 = load_and_run(path, cache, Precision::kBFloat16);
  CHECK(bf16.status.starts_with("written ("));  // bf16 layouts added
  CHECK(bf16.packed > 0);
  const Result bf16_again = load_and_run(path, cache, Precision::kBFloat16);
  CHECK(bf16_again.packed == 0);
  CHECK(bf16_again.logits == bf16.logits);
  const Result f32_again = load_and_run(path, cache);
  CHECK(f32_again.packed == 0);
  CHECK(f32_again.logits == f32.logits);
}

TEST_CASE("a cache file written into after it was read: the next run refuses, and says why") {
  TempDir dir;
  const std::string path = dir.file("t.rvlt"), cache = dir.file("cache");
  convert_checkpoint(testdata("T_bare.pth"), path);
  const Result good = load_and_run(path, cache);
  const std::string cache_file = files_in(cache)[0];
  const std::vector<uint8_t> bytes = read_file(cache_file);
  const auto input = random_vector(2 * 3 * 45 * 37, 11);
  for (const bool shorten : {false, true}) {
    CAPTURE(shorten);
    write_file(cache_file, bytes);
    LoadOptions load;
    load.cache_dir = cache;
    const auto model = Model::load(path, load);
    Session session(model, SessionOptions{});
    const auto first = session.run(input.data(), kShape);
    REQUIRE(model->weight_cache_status() == "read");
    CHECK(std::equal(first.begin(), first.end(), good.logits.begin(), good.logits.end()));
    usleep(50 * 1000);  // past the file system's timestamp tick
    // In place (not the writer's rename): the runs read its mapping.
    std::vector<uint8_t> changed = bytes;
    if (shorten)
      changed.resize(bytes.size() / 2);
    else
      std::fill(changed.begin() + bytes.size() / 2, changed.begin() + bytes.size() / 2 + 64, 0);
    write_file(cache_file, changed);
    CHECK_THROWS_WITH_AS(session.run(input.data(), kShape),
                         doctest::Contains((cache_file + ": the file was written").c_str()), Error);
  }
}
