// The CUDA backend against the CPU backend: every op at odd sizes (small
// graphs run through both executors), then whole models (float32 logits
// within 1e-4 relative L2, same top-1). Without a usable GPU every case
// reports why and checks nothing else (CTest shows the test as skipped).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "engine/src/model_impl.h"
#include "ravlt/convert.h"
#include "ravlt/model.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cuda/cublaslt_library.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/executor.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::runtime;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

bool gpu_or_skip() {
  std::string why;
  if (cuda::available(&why)) return true;
  MESSAGE("skipped: " << why);
  return false;
}

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f, float shift = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng) * scale + shift;
  return v;
}

double rel_l2(const float* got, const float* want, size_t n) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return std::sqrt(err / (norm > 0 ? norm : 1));
}

// A small graph under construction: value 0 is the input.
struct Builder {
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<std::unique_ptr<std::vector<float>>> storage;  // constants' data

  explicit Builder(Shape input) { values.push_back({"input", false, std::move(input), nullptr}); }
  uint32_t constant(Shape shape, uint32_t seed, float scale = 0.3f, float shift = 0) {
    storage.push_back(std::make_unique<std::vector<float>>(
        random_vector(static_cast<size_t>(element_count(shape)), seed, scale, shift)));
    values.push_back(
        {"c" + std::to_string(values.size()), true, std::move(shape), storage.back()->data()});
    return static_cast<uint32_t>(values.size() - 1);
  }
  uint32_t add(Node node, std::vector<uint32_t> inputs) {
    node.name = "n" + std::to_string(nodes.size());
    node.inputs = std::move(inputs);
    values.push_back({"v" + std::to_string(values.size()), false, {}, nullptr});
    node.output = static_cast<uint32_t>(values.size() - 1);
    nodes.push_back(node);
    return node.output;
  }
  uint32_t slice(uint32_t x, int begin, int end) {
    Node n;
    n.op = Op::kChannelSlice;
    n.slice_begin = begin;
    n.slice_end = end;
    return add(n, {x});
  }
  std::shared_ptr<const Graph> graph() const {
    return Graph::from_parts(values, nodes, 0, nodes.back().output);
  }
};

// Runs `b`'s graph on the CPU and on the GPU (with and without a recorded
// graph) and checks the outputs agree within `tolerance`.
// Tolerances per storage type (float32 as given; 16-bit types round every
// stored activation and weight: about 2^-11 and 2^-8 relative).
double tolerance_for(DType storage, double f32) {
  if (storage == DType::kFloat16) return 5e-3;
  if (storage == DType::kBFloat16) return 4e-2;
  return f32;
}

const char* name_of(DType storage) {
  return storage == DType::kFloat16 ? "fp16" : storage == DType::kBFloat16 ? "bf16" : "fp32";
}

void check_against_cpu(const Builder& b, const Shape& input_shape, double tolerance,
                       uint32_t seed = 1) {
  const auto graph = b.graph();
  const auto input = random_vector(static_cast<size_t>(element_count(input_shape)), seed);
  Executor cpu(graph, std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>()), 1);
  const size_t n = static_cast<size_t>(element_count(cpu.plan(input_shape).output_shape));
  const float* want = cpu.run(input.data(), input_shape);
  const std::vector<float> expected(want, want + n);

  auto weights = std::make_shared<cuda::DeviceWeights>();
  for (DType storage : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    for (bool graphs : {true, false}) {
      cuda::CudaOptions options;
      options.use_graphs = graphs;
      options.storage = storage;
      Executor gpu(graph, cuda::make_backend(weights, options), 0);
      const float* got = gpu.run(input.data(), input_shape);
      const std::vector<float> first(got, got + n);
      const double err = rel_l2(first.data(), expected.data(), n);
      INFO(name_of(storage) << ", graphs " << graphs << ", input " << to_string(input_shape)
                            << ": rel L2 " << err);
      CHECK(err <= tolerance_for(storage, tolerance));
      got = gpu.run(input.data(), input_shape);  // a replay gives the same bits
      CHECK(std::memcmp(got, first.data(), n * sizeof(float)) == 0);
    }
  }
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

TEST_CASE("CUDA: layout, slice, pooling and LayerNorm equal the CPU's") {
  if (!gpu_or_skip()) return;
  {
    Builder b({-1, 5, -1, -1});
    Node n;
    n.op = Op::kToChannelsLast;
    const uint32_t x = b.add(n, {0});
    Node pool;
    pool.op = Op::kGlobalAvgPool;
    b.add(pool, {x});
    check_against_cpu(b, {3, 5, 7, 11}, 1e-6);
  }
  {
    Builder b({-1, 77});
    Node ln;
    ln.op = Op::kLayerNorm;
    ln.epsilon = 1e-5f;
    b.add(ln, {b.slice(0, 3, 74), b.constant({71}, 2, 0.5f, 1.0f), b.constant({71}, 3)});
    check_against_cpu(b, {13, 77}, 1e-6);
  }
}

TEST_CASE("CUDA: convolutions (dense, strided, depthwise, 1x1) equal the CPU's") {
  if (!gpu_or_skip()) return;
  Builder b({-1, 3, -1, -1});
  Node to_nhwc;
  to_nhwc.op = Op::kToChannelsLast;
  uint32_t x = b.add(to_nhwc, {0});
  auto conv = [&](uint32_t in, int ci, int co, int k, int stride, int pad, int groups,
                  Activation act) {
    Node n;
    n.op = Op::kConv2d;
    n.conv = {k, k, stride, stride, pad, pad, groups};
    n.activation = act;
    const uint32_t w = b.constant({co, ci / groups, k, k}, static_cast<uint32_t>(10 + co + k));
    const uint32_t bias = b.constant({co}, static_cast<uint32_t>(20 + co), 0.5f);
    return b.add(n, {in, w, bias});
  };
  x = conv(x, 3, 24, 3, 2, 1, 1, Activation::kGelu);
  x = conv(x, 24, 24, 5, 1, 2, 24, Activation::kNone);  // depthwise 5x5
  x = conv(x, 24, 24, 3, 1, 1, 24, Activation::kNone);  // depthwise 3x3
  x = conv(x, 24, 40, 3, 2, 1, 1, Activation::kSwish);
  conv(x, 40, 16, 1, 1, 0, 1, Activation::kNone);
  check_against_cpu(b, {2, 3, 17, 23}, 1e-5);
  check_against_cpu(b, {1, 3, 32, 31}, 1e-5);
}

TEST_CASE("CUDA: Linear with bias, GELU and residual (cuBLASLt) equals the CPU's") {
  if (!gpu_or_skip()) return;
  for (Activation act : {Activation::kNone, Activation::kGelu, Activation::kSwish}) {
    for (bool residual : {false, true}) {
      const int k = 70, n = 45;
      Builder b({-1, k + n});
      Node linear;
      linear.op = Op::kLinear;
      linear.activation = act;
      std::vector<uint32_t> inputs = {b.slice(0, 0, k), b.constant({n, k}, 4),
                                      b.constant({n}, 5, 0.5f)};
      if (residual) inputs.push_back(b.slice(0, k, k + n));
      b.add(linear, inputs);
      INFO("activation " << int(act) << ", residual " << residual);
      check_against_cpu(b, {37, k + n}, 1e-5);
      check_against_cpu(b, {1, k + n}, 1e-5);
    }
  }
}

TEST_CASE("CUDA: RALA and softmax attention equal the CPU's at odd sizes and head dims") {
  if (!gpu_or_skip()) return;
  struct Size {
    int64_t n, h, w;
  };
  for (bool rala : {true, false}) {
    for (int d : {20, 32, 44, 64, 96}) {
      const int heads = 2, c = heads * d;
      for (Size s : {Size{2, 1, 1}, Size{2, 7, 1}, Size{2, 9, 13}, Size{1, 1, 3137}}) {
        if (!rala && s.w == 3137 && d > 32) continue;  // quadratic: keep the test short
        Builder b({-1, -1, -1, 5 * c});
        Node attention;
        attention.op = rala ? Op::kRalaAttention : Op::kSoftmaxAttention;
        attention.heads = heads;
        attention.head_dim = d;
        const uint32_t angle = b.constant({d / 2}, 6, 0.5f, 0.5f);
        b.add(attention, {b.slice(0, 0, 4 * c), b.slice(0, 4 * c, 5 * c), angle});
        INFO((rala ? "RALA" : "softmax") << ", head dim " << d);
        check_against_cpu(b, {s.n, s.h, s.w, 5 * c}, 1e-5);
      }
    }
  }
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
    const auto got = gpu.run(input.data(), c.shape);
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
