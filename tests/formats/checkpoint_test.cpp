#include <doctest/doctest.h>

#include <map>

#include "base/half_float.h"
#include "formats/torch/checkpoint.h"
#include "formats/torch/state_dict.h"
#include "ravlt/error.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::torch;
using ravlt::test::read_file;
using ravlt::test::TempDir;
using ravlt::test::testdata;
using ravlt::test::write_file;

namespace {

std::map<std::string, std::vector<float>> read_all(const std::string& path,
                                                   const std::string& entry = "") {
  const auto c = Checkpoint::open(path);
  const StateDict sd = extract_state_dict(*c, entry);
  std::map<std::string, std::vector<float>> out;
  for (const NamedTensor& t : sd.tensors) out[t.name] = c->to_float32(*t.tensor);
  return out;
}

// Opens, extracts and reads every tensor; returns the error, or "" if none.
std::string load_error(const std::string& path) {
  try {
    read_all(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every layout of the same weights reads the same values") {
  const auto bare = read_all(testdata("custom_bare.pth"));
  REQUIRE(bare.size() > 100);
  // zip and legacy containers; bare, "module."-prefixed, training layouts;
  // tensors that view one storage at offsets, and a transposed view.
  for (const char* name : {"custom_module.pth", "custom_views.pth", "custom_training.pth",
                           "custom_legacy_bare.pth", "custom_legacy_training.pth"}) {
    INFO(name);
    const auto other = read_all(testdata(name));
    REQUIRE(other.size() == bare.size());
    for (const auto& entry : bare) {
      const std::string& key = entry.first;  // clang 14: INFO cannot capture a binding
      INFO(key);
      REQUIRE(other.count(key));
      REQUIRE(other.at(key) == entry.second);
    }
  }
}

TEST_CASE("half and bfloat16 checkpoints read as the rounded float32 values") {
  const auto bare = read_all(testdata("custom_bare.pth"));
  const auto half = read_all(testdata("custom_fp16_training.pth"));
  const auto bf16 = read_all(testdata("custom_bf16_module.pth"));
  for (const auto& [key, values] : bare) {
    if (key.ends_with("num_batches_tracked")) continue;
    for (size_t i = 0; i < values.size(); ++i) {
      REQUIRE(half.at(key)[i] == half_to_float(float_to_half(values[i])));
      REQUIRE(bf16.at(key)[i] == bfloat16_to_float(float_to_bfloat16(values[i])));
    }
  }
}

TEST_CASE("training checkpoints: model and model_ema, inert objects elsewhere") {
  const auto c = Checkpoint::open(testdata("custom_training.pth"));
  const StateDict model = extract_state_dict(*c);
  CHECK(model.source == "model");
  const StateDict ema = extract_state_dict(*c, "model_ema");
  CHECK(ema.source == "model_ema");
  CHECK(c->to_float32(*model.tensors[0].tensor) != c->to_float32(*ema.tensors[0].tensor));
  // The scheduler state holds the optimizer object and a bound method: inert.
  bool found_scheduler = false;
  for (const auto& [k, v] : c->root().entries) {
    if (k->text == "lr_scheduler") {
      found_scheduler = true;
      CHECK(v->kind == Kind::kDict);
    }
  }
  CHECK(found_scheduler);
  CHECK_THROWS_WITH_AS(extract_state_dict(*c, "optimizer"), doctest::Contains("key 'state' holds"),
                       Error);
  CHECK_THROWS_WITH_AS(extract_state_dict(*c, "args"), doctest::Contains("argparse.Namespace"),
                       Error);
  CHECK_THROWS_WITH_AS(extract_state_dict(*c, "nope"), doctest::Contains("has no entry 'nope'"),
                       Error);
  const auto bare = Checkpoint::open(testdata("custom_module.pth"));
  CHECK(extract_state_dict(*bare).stripped_module_prefix);
}

TEST_CASE("a checkpoint truncated anywhere is refused, never crashes") {
  TempDir dir;
  for (const char* name : {"custom_bare.pth", "custom_legacy_training.pth"}) {
    const std::vector<uint8_t> full = read_file(testdata(name));
    const std::string cut = dir.file("cut.pth");
    // Every length in the first 4 KiB (headers and the pickle), then a spread.
    std::vector<size_t> lengths;
    for (size_t n = 1; n < 4096 && n < full.size(); ++n) lengths.push_back(n);
    for (size_t n = 4096; n < full.size(); n += full.size() / 97) lengths.push_back(n);
    lengths.push_back(full.size() - 1);
    for (size_t n : lengths) {
      write_file(cut, std::vector<uint8_t>(full.begin(), full.begin() + static_cast<long>(n)));
      INFO(name << " cut at " << n);
      REQUIRE(!load_error(cut).empty());
    }
  }
}

TEST_CASE("bad checkpoints give errors that name the problem") {
  CHECK(load_error(testdata("hostile_posix_system.pth")).find("posix.system") != std::string::npos);
  CHECK(load_error(testdata("hostile_eval_stack_global.pth")).find("builtins.eval") !=
        std::string::npos);
  CHECK(load_error(testdata("hostile_subprocess.pth")).find("subprocess.Popen") !=
        std::string::npos);
  CHECK(load_error(testdata("inert_in_state_dict.pth"))
            .find("key 'head.bias' holds an object made by argparse.Namespace") !=
        std::string::npos);
  CHECK(load_error(testdata("short_storage.pth")).find("but its zip entry holds") !=
        std::string::npos);
  CHECK(load_error(testdata("lying_pickle_size.pth")).find("data.pkl") != std::string::npos);
  CHECK(load_error(testdata("not_a_checkpoint.pth")).find("not a PyTorch checkpoint") !=
        std::string::npos);
  CHECK(load_error(testdata("does_not_exist.pth")).find("cannot open") != std::string::npos);
}
