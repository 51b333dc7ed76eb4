// The CUDA backend's whole-model path against the CPU backend (float32
// logits within 1e-4 relative L2, same top-1; a recorded CUDA graph replays
// bit for bit; 16-bit precisions near float32; weights shared). Each op
// alone is checked against the reference kernels by backend_ops_test.
// Without a usable GPU every case reports why and checks nothing else
// (CTest shows the test as skipped).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "engine/src/model_impl.h"
#include "ravlt/convert.h"
#include "ravlt/model.h"
#include "runtime/cuda/cublaslt_library.h"
#include "runtime/cuda/cuda_backend.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::runtime;
using ravlt::test::random_vector;
using ravlt::test::rel_l2;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

bool gpu_or_skip() {
  std::string why;
  if (cuda::available(&why)) return true;
  MESSAGE("skipped: " << why);
  return false;
}

// The generated custom model and the trained digits demo, converted into
// `dir`: (custom.rvlt, digits.rvlt).
std::pair<std::string, std::string> convert_test_models(const TempDir& dir) {
  const std::string custom = dir.file("custom.rvlt"), digits = dir.file("digits.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), custom);
  ConvertOptions demo;
  demo.resize = 64;
  demo.crop = 64;
  convert_checkpoint(std::string(RAVLT_SOURCE_DIR) + "/demo/ravlt_digits.pth", digits, demo);
  return {custom, digits};
}

}  // namespace

TEST_CASE("cuBLASLt loads on demand and every function it needs resolves (no GPU needed)") {
  const cuda::CublasLt& lib = cuda::lt();
#define RAVLT_CHECK_RESOLVED(fn) CHECK((lib.fn != nullptr));
  RAVLT_CUBLASLT_FUNCTIONS(RAVLT_CHECK_RESOLVED)
#undef RAVLT_CHECK_RESOLVED
  CHECK(std::string(lib.cublasLtGetStatusString(CUBLAS_STATUS_SUCCESS)).size() > 0);
  CHECK(&cuda::lt() == &lib);  // loaded once
}

TEST_CASE("CUDA: whole models match the CPU backend (float32 logits, rel L2 <= 1e-4)") {
  if (!gpu_or_skip()) return;
  TempDir dir;
  const auto [custom, digits] = convert_test_models(dir);
  struct Case {
    std::string path;
    std::vector<int64_t> shape;
  };
  const Case cases[] = {{custom, {1, 3, 224, 224}}, {custom, {3, 3, 97, 161}},
                        {custom, {2, 3, 64, 48}},   {digits, {1, 3, 64, 64}},
                        {digits, {8, 3, 64, 64}},   {digits, {3, 3, 45, 77}}};
  for (const Case& c : cases) {
    const auto model = Model::load(c.path);
    const auto input = random_vector(static_cast<size_t>(c.shape[0] * 3 * c.shape[2] * c.shape[3]),
                                     static_cast<uint32_t>(c.shape[2]));
    Session cpu(model);
    SessionOptions options;
    options.device = Device::kCuda;
    Session gpu(model, options);
    const auto want = cpu.run(input.data(), c.shape);
    const std::vector<float> expected(want.begin(), want.end());
    const auto first_run = gpu.run(input.data(), c.shape);  // records the plan's CUDA graph
    const std::vector<float> got(first_run.begin(), first_run.end());
    const auto replayed = gpu.run(input.data(), c.shape);  // replays it: the same bits
    CHECK(std::memcmp(replayed.data(), got.data(), got.size() * sizeof(float)) == 0);
    REQUIRE(got.size() == expected.size());
    const double err = rel_l2(got.data(), expected.data(), got.size());
    INFO(c.path << " " << to_string(Shape(c.shape)) << ": rel L2 " << err);
    CHECK(err <= 1e-4);
    const size_t classes = static_cast<size_t>(model->num_classes());
    for (size_t i = 0; i < got.size() / classes; ++i) {
      auto top = [&](const float* l) {
        return std::max_element(l + i * classes, l + (i + 1) * classes) - (l + i * classes);
      };
      CHECK(top(got.data()) == top(expected.data()));
    }
  }
}

TEST_CASE("CUDA: a backbone's four maps match the CPU backend in every precision") {
  if (!gpu_or_skip()) return;
  TempDir dir;
  const std::string path = dir.file("backbone.rvlt");
  convert_checkpoint(testdata("custom_mmdet.pth"), path);
  const auto model = Model::load(path);
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{1, 3, 160, 224}, std::vector<int64_t>{2, 3, 97, 75}}) {
    const auto input = random_vector(static_cast<size_t>(shape[0] * 3 * shape[2] * shape[3]), 8);
    Session cpu(model);
    std::vector<std::vector<float>> want;
    for (const Output& o : cpu.run_all(input.data(), shape))
      want.emplace_back(o.data.begin(), o.data.end());
    for (DType precision : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      SessionOptions options;
      options.device = Device::kCuda;
      options.precision = precision;
      Session gpu(model, options);
      const std::vector<Output> got = gpu.run_all(input.data(), shape);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        REQUIRE(got[i].data.size() == want[i].size());
        const double err = rel_l2(got[i].data.data(), want[i].data(), want[i].size());
        INFO(got[i].name << " " << to_string(Shape(shape)) << " " << to_string(precision)
                         << ": rel L2 " << err);
        CHECK(err <= (precision == DType::kFloat32 ? 1e-4 : 3e-2));
      }
    }
  }
}

TEST_CASE("CUDA fp16 and bf16: whole models near the float32 CPU logits, same confident top-1") {
  if (!gpu_or_skip()) return;
  TempDir dir;
  const auto [custom, digits] = convert_test_models(dir);
  for (const std::string& path : {custom, digits}) {
    const auto model = Model::load(path);
    const std::vector<int64_t> shape = {8, 3, 64, 64};
    const auto input = random_vector(static_cast<size_t>(8 * 3 * 64 * 64), 17);
    Session cpu(model);
    const auto want = cpu.run(input.data(), shape);
    const std::vector<float> expected(want.begin(), want.end());
    const size_t classes = static_cast<size_t>(model->num_classes());
    for (Precision precision : {Precision::kFloat16, Precision::kBFloat16}) {
      SessionOptions options;
      options.device = Device::kCuda;
      options.precision = precision;
      Session gpu(model, options);
      const auto got = gpu.run(input.data(), shape);
      const double err = rel_l2(got.data(), expected.data(), got.size());
      INFO(path << " " << to_string(precision) << ": rel L2 " << err);
      CHECK(err <= (precision == Precision::kFloat16 ? 1e-2 : 3e-2));
      for (size_t i = 0; i < 8; ++i) {
        const float* e = expected.data() + i * classes;
        std::vector<float> sorted(e, e + classes);
        std::sort(sorted.rbegin(), sorted.rend());
        if (sorted[0] - sorted[1] <= 1e-2f * std::fabs(sorted[0])) continue;  // not confident
        CHECK(std::max_element(got.data() + i * classes, got.data() + (i + 1) * classes) -
                  (got.data() + i * classes) ==
              std::max_element(e, e + classes) - e);
      }
    }
  }
}

TEST_CASE("CUDA: sessions of one model share its uploaded weights") {
  if (!gpu_or_skip()) return;
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const auto model = Model::load(path);
  SessionOptions options;
  options.device = Device::kCuda;
  const auto input = random_vector(3 * 40 * 40, 3);
  const std::vector<int64_t> shape = {1, 3, 40, 40};
  Session first(model, options);
  const auto a = first.run(input.data(), shape);
  const std::vector<float> out(a.begin(), a.end());
  const size_t uploaded = ravlt::model_impl(*model).device_weights()->bytes();
  CHECK(uploaded > 0);
  Session second(model, options);
  const auto b2 = second.run(input.data(), shape);
  CHECK(std::memcmp(b2.data(), out.data(), out.size() * sizeof(float)) == 0);
  CHECK(ravlt::model_impl(*model).device_weights()->bytes() == uploaded);
}
