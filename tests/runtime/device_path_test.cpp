// The executor's path for device backends (what runtime/cuda/ relies on),
// checked on the CPU: a stand-in "device" backend runs the CPU kernels on
// memory of its own, poisoned when allocated, and checks that every pointer
// a kernel gets lies in that memory (never the caller's input or the file's
// mapping). Results must equal the host path bit for bit; constants are
// uploaded once per backend; the input and output are staged once per run;
// each plan is recorded on its first run and replayed after (the CUDA graph
// logic), per shape.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "formats/rvlt/model_file.h"
#include "ravlt/convert.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cuda/device_weights_layout.h"
#include "runtime/executor.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::runtime;
using ravlt::test::random_vector;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

struct DeviceLog {
  std::vector<std::pair<const uint8_t*, const uint8_t*>> ranges;  // every block allocated
  int uploads = 0, copies_in = 0, copies_out = 0, recorded = 0, replayed = 0;
  bool owns(const void* p, size_t bytes) const {
    const auto* b = static_cast<const uint8_t*>(p);
    for (const auto& [begin, end] : ranges) {
      if (b >= begin && b + bytes <= end) return true;
    }
    return false;
  }
};

class FakeMemory : public BackendMemory {
 public:
  FakeMemory(size_t bytes, DeviceLog& log) : host_(allocate_host(bytes)) {
    std::memset(host_->data(), 0xff, bytes);  // NaN: a read of unwritten memory shows
    log.ranges.emplace_back(host_->data(), host_->data() + bytes);
  }
  uint8_t* data() const override { return host_->data(); }

 private:
  std::unique_ptr<BackendMemory> host_;
};

// A CPU kernel that first checks its pointers are "device" memory.
class CheckedKernel : public Kernel {
 public:
  CheckedKernel(std::unique_ptr<Kernel> inner, size_t inputs, const DeviceLog& log)
      : inner_(std::move(inner)), inputs_(inputs), log_(log) {}
  size_t scratch_bytes() const override { return inner_->scratch_bytes(); }
  void run(const ConstView* inputs, View output, uint8_t* scratch) override {
    for (size_t i = 0; i < inputs_; ++i) REQUIRE(log_.owns(inputs[i].data, 4));
    REQUIRE(log_.owns(output.data, 4));
    if (scratch != nullptr) REQUIRE(log_.owns(scratch, inner_->scratch_bytes()));
    inner_->run(inputs, output, scratch);
  }

 private:
  std::unique_ptr<Kernel> inner_;
  size_t inputs_;
  const DeviceLog& log_;
};

struct Recording : PlanState {};

class FakeDeviceBackend : public Backend {
 public:
  // `activations`: the type the plan stores activations in (the CPU
  // kernels behind this stand-in run float32 only: other types are for
  // planning).
  explicit FakeDeviceBackend(DeviceLog& log, DType activations = DType::kFloat32)
      : cpu_(std::make_shared<cpu::WeightCache>()), log_(log), activations_(activations) {}
  DType activation_dtype() const override { return activations_; }
  std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                  const std::vector<Shape>& shapes) override {
    return std::make_unique<CheckedKernel>(cpu_.prepare(graph, node, shapes), node.inputs.size(),
                                           log_);
  }
  void begin_run(int threads) override { cpu_.begin_run(threads); }
  bool uses_host_memory() const override { return false; }
  std::unique_ptr<BackendMemory> allocate(size_t bytes) override {
    return std::make_unique<FakeMemory>(bytes, log_);
  }
  const void* constant(const Graph& graph, uint32_t value) override {
    auto it = uploaded_.find(value);
    if (it == uploaded_.end()) {
      const size_t bytes = static_cast<size_t>(element_count(graph.values()[value].shape)) * 4;
      auto memory = allocate(bytes);
      std::memcpy(memory->data(), graph.values()[value].data, bytes);
      ++log_.uploads;
      it = uploaded_.emplace(value, std::move(memory)).first;
    }
    return it->second->data();
  }
  void copy_in(void* dst, DType dst_type, const float* src, size_t count) override {
    REQUIRE(dst_type == activations_);
    REQUIRE(log_.owns(dst, count * dtype_size(dst_type)));
    REQUIRE_FALSE(log_.owns(src, count * 4));
    ++log_.copies_in;
    Backend::copy_in(dst, dst_type, src, count);
  }
  void copy_out(float* dst, const void* src, DType src_type, size_t count) override {
    REQUIRE(log_.owns(src, count * dtype_size(src_type)));
    REQUIRE_FALSE(log_.owns(dst, count * 4));
    ++log_.copies_out;
    Backend::copy_out(dst, src, src_type, count);
  }
  void execute(std::unique_ptr<PlanState>& state, const std::function<void()>& launch) override {
    if (!state) {
      state = std::make_unique<Recording>();
      ++log_.recorded;
    } else {
      ++log_.replayed;
    }
    launch();
  }

 private:
  cpu::CpuBackend cpu_;
  std::map<uint32_t, std::unique_ptr<BackendMemory>> uploaded_;
  DeviceLog& log_;
  DType activations_;
};

}  // namespace

TEST_CASE("a device backend: own memory only, staged input and output, record once per shape") {
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const auto graph = Graph::load(rvlt::ModelFile::open(path));

  Executor host(graph, std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>()), 1);
  DeviceLog log;
  Executor device(graph, std::make_unique<FakeDeviceBackend>(log), 1);

  size_t constants = 0;
  for (const Value& v : graph->values()) constants += v.constant ? 1 : 0;
  const std::vector<std::vector<int64_t>> shapes = {{1, 3, 33, 47}, {2, 3, 40, 40}, {1, 3, 33, 47}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto input =
        random_vector(static_cast<size_t>(element_count(shapes[i])), static_cast<uint32_t>(i));
    const size_t n = static_cast<size_t>(element_count(host.plan(shapes[i]).output_shapes[0]));
    const float* want = host.run(input.data(), shapes[i])[0];
    const std::vector<float> expected(want, want + n);
    for (int repeat = 0; repeat < 2; ++repeat) {
      const float* got = device.run(input.data(), shapes[i])[0];
      CHECK(std::memcmp(got, expected.data(), n * sizeof(float)) == 0);
      CHECK_FALSE(log.owns(got, n * sizeof(float)));  // the caller gets host memory
    }
  }
  // Two shapes planned, each recorded on its first run and replayed after.
  CHECK(log.recorded == 2);
  CHECK(log.replayed == 4);
  CHECK(log.copies_in == 6);
  CHECK(log.copies_out == 6);
  // Constants are uploaded once, whatever the number of plans.
  CHECK(log.uploads == static_cast<int>(constants));

  // An observed run hands the observer host copies of the same outputs.
  const auto input = random_vector(static_cast<size_t>(element_count(shapes[0])), 9);
  std::vector<std::vector<float>> host_nodes, device_nodes;
  auto keep = [](std::vector<std::vector<float>>& into) {
    return [&into](size_t, const float* data, const Shape& shape) {
      into.emplace_back(data, data + element_count(shape));
    };
  };
  host.run_observed(input.data(), shapes[0], keep(host_nodes));
  device.run_observed(input.data(), shapes[0], keep(device_nodes));
  REQUIRE(device_nodes.size() == graph->nodes().size());
  CHECK(device_nodes == host_nodes);

  // Profiled runs time each node and are never recorded.
  const int recorded = log.recorded, replayed = log.replayed;
  device.set_profiling(true);
  device.run(input.data(), shapes[0]);
  CHECK(log.recorded == recorded);
  CHECK(log.replayed == replayed);
  CHECK(device.node_seconds().size() == graph->nodes().size());
  // ... and the staging of the input and the outputs apart from the nodes.
  CHECK(device.input_copy_seconds() > 0.0);
  CHECK(device.output_copy_seconds() > 0.0);
  CHECK(host.input_copy_seconds() == 0.0);  // not profiled
}

TEST_CASE("a backbone's graph on a device backend: every stage staged out, equal to the host") {
  TempDir dir;
  const std::string path = dir.file("backbone.rvlt");
  convert_checkpoint(testdata("custom_mmdet.pth"), path);
  const auto graph = Graph::load(rvlt::ModelFile::open(path));
  REQUIRE(graph->outputs().size() == 4);
  Executor host(graph, std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>()), 1);
  DeviceLog log;
  Executor device(graph, std::make_unique<FakeDeviceBackend>(log), 1);
  const std::vector<int64_t> shape = {2, 3, 45, 37};
  const auto input = random_vector(static_cast<size_t>(element_count(shape)), 3);
  const PlanStats& stats = host.plan(shape);
  const std::span<const float* const> want = host.run(input.data(), shape);
  std::vector<std::vector<float>> expected;
  for (size_t i = 0; i < 4; ++i) {
    expected.emplace_back(want[i], want[i] + element_count(stats.output_shapes[i]));
  }
  CHECK(stats.output_shapes[0] == Shape{2, 48, 12, 10});  // NCHW
  for (int repeat = 0; repeat < 2; ++repeat) {
    const std::span<const float* const> got = device.run(input.data(), shape);
    for (size_t i = 0; i < 4; ++i) {
      const size_t n = expected[i].size();
      CHECK(std::memcmp(got[i], expected[i].data(), n * sizeof(float)) == 0);
      CHECK_FALSE(log.owns(got[i], n * sizeof(float)));
    }
  }
  CHECK(log.copies_out == 8);  // four outputs per run
  CHECK(log.recorded == 1);
  CHECK(log.replayed == 1);
}

TEST_CASE("a 16-bit plan places its activations in half the bytes; scratch stays float32") {
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const auto graph = Graph::load(rvlt::ModelFile::open(path));
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{1, 3, 33, 47}, std::vector<int64_t>{2, 3, 64, 64}}) {
    DeviceLog log32, log16;
    Executor wide(graph, std::make_unique<FakeDeviceBackend>(log32), 1);
    Executor narrow(graph, std::make_unique<FakeDeviceBackend>(log16, DType::kBFloat16), 1);
    const PlanStats a = wide.plan(shape), b = narrow.plan(shape);
    INFO("float32 plan: " << a.activation_bytes << " B activations + " << a.scratch_bytes
                          << " B scratch; bfloat16 plan: " << b.activation_bytes << " + "
                          << b.scratch_bytes);
    CHECK(b.activation_bytes > 0);
    CHECK(b.activation_bytes <= a.activation_bytes / 2 + 64);  // one alignment step of slack
    CHECK(b.scratch_bytes == a.scratch_bytes);                 // the kernels' float32 scratch
    CHECK(b.arena_bytes <= a.activation_bytes / 2 + 64 + a.scratch_bytes);
  }
}

TEST_CASE("convolution weights reordered for the CUDA kernels keep every tap") {
  const Shape oihw = {5, 3, 2, 4};  // co, ci / groups, kh, kw
  std::vector<float> w(static_cast<size_t>(element_count(oihw)));
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
  const std::vector<float> hwio = cuda::conv_weight_to_hwio(oihw, w.data());
  REQUIRE(hwio.size() == w.size());
  for (int o = 0; o < 5; ++o)
    for (int i = 0; i < 3; ++i)
      for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 4; ++x)
          CHECK(hwio[static_cast<size_t>(((y * 4 + x) * 3 + i) * 5 + o)] ==
                w[static_cast<size_t>(((o * 3 + i) * 2 + y) * 4 + x)]);
  // [co][kh][kw][ci]: row co of the GEMM, columns in im2col's (ky, kx, ci) order.
  const std::vector<float> ohwi = cuda::conv_weight_to_ohwi(oihw, w.data());
  REQUIRE(ohwi.size() == w.size());
  for (int o = 0; o < 5; ++o)
    for (int i = 0; i < 3; ++i)
      for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 4; ++x)
          CHECK(ohwi[static_cast<size_t>(((o * 2 + y) * 4 + x) * 3 + i)] ==
                w[static_cast<size_t>(((o * 3 + i) * 2 + y) * 4 + x)]);
}
