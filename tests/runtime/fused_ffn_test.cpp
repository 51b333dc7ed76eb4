// The CPU backend's fused FFN (runtime/cpu/fused_ffn.cpp) and the
// executor's fusions: the fused chain computes what its nodes compute one by
// one (against the reference kernels, in double), at odd sizes, batches
// that split images into parts, thread counts that do not divide them, and
// channels beyond whole registers, on every instruction-set path this CPU
// has, in float32 and (where the CPU has it) bfloat16; a value asked for
// is never fused away; an observed run sees every
// node; and a backend's impossible fusion is refused with a clear error.
#include <doctest/doctest.h>

#include <cmath>

#include "ravlt/error.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/isa.h"
#include "runtime/executor.h"
#include "runtime/op_shapes.h"
#include "runtime/reference/reference_ops.h"
#include "tests/runtime/cpu_test_util.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::runtime;
using ravlt::test::cpu_backend;
using ravlt::test::random_vector;

namespace {

// x -> pre (Linear C -> C) -> fc1 (Linear C -> F, GELU) -> dw (3x3
// depthwise, the FFN's inner residual folded in as RAVLT's converter does)
// -> fc2 (Linear F -> C, plus x): the FFN of a RAVLT block, its input not
// its residual. Values: 0 x, 1..2 pre, 3 t, 4..5 fc1, 6 h, 7..8 dw, 9 g,
// 10..11 fc2, 12 y.
struct FfnGraph {
  FfnGraph(int64_t channels, int64_t hidden) : c(channels), f(hidden) {
    auto weight = [&](size_t n, uint32_t seed, float scale) {
      data.push_back(random_vector(n, seed, scale));
    };
    const auto cs = static_cast<size_t>(c), fs = static_cast<size_t>(f);
    weight(cs * cs, 1, 1.0f / std::sqrt(static_cast<float>(c)));
    weight(cs, 2, 0.1f);
    weight(fs * cs, 3, 1.5f / std::sqrt(static_cast<float>(c)));
    weight(fs, 4, 0.3f);
    weight(fs * 9, 5, 0.3f);
    for (size_t ch = 0; ch < fs; ++ch) data.back()[ch * 9 + 4] += 1.0f;  // h + dwconv(h)
    weight(fs, 6, 0.1f);
    weight(cs * fs, 7, 1.0f / std::sqrt(static_cast<float>(f)));
    weight(cs, 8, 0.1f);
    const std::vector<Shape> constant_shapes = {{c, c},       {c}, {f, c}, {f},
                                                {f, 1, 3, 3}, {f}, {c, f}, {c}};
    const uint32_t constant_ids[] = {1, 2, 4, 5, 7, 8, 10, 11};
    std::vector<Value> values(13);
    for (uint32_t v = 0; v < 13; ++v) values[v].name = "v" + std::to_string(v);
    for (size_t i = 0; i < 8; ++i) {
      Value& v = values[constant_ids[i]];
      v.constant = true;
      v.shape = constant_shapes[i];
      v.data = data[i].data();
    }
    values[0].shape = {-1, -1, -1, c};
    auto linear = [](const char* name, std::vector<uint32_t> in, uint32_t out, Activation a) {
      Node n;
      n.name = name;
      n.op = Op::kLinear;
      n.inputs = std::move(in);
      n.output = out;
      n.activation = a;
      return n;
    };
    Node dw;
    dw.name = "ffn.dwconv";
    dw.op = Op::kConv2d;
    dw.inputs = {6, 7, 8};
    dw.output = 9;
    dw.conv = {3, 3, 1, 1, 1, 1, static_cast<int>(f)};
    const std::vector<Node> nodes = {linear("pre", {0, 1, 2}, 3, Activation::kNone),
                                     linear("ffn.fc1", {3, 4, 5}, 6, Activation::kGelu), dw,
                                     linear("ffn.fc2", {9, 10, 11, 0}, 12, Activation::kNone)};
    graph = Graph::from_parts(values, nodes, 0, {12});
  }

  // Every node's output by the reference kernels (double, rounded to
  // float between nodes), for input x of `shape`.
  std::vector<std::vector<double>> reference(const std::vector<float>& x,
                                             const Shape& shape) const {
    std::vector<Shape> shapes(graph->values().size());
    std::vector<std::vector<float>> held(graph->values().size());
    shapes[0] = shape;
    held[0] = x;
    for (uint32_t v = 0; v < shapes.size(); ++v) {
      if (graph->values()[v].constant) shapes[v] = graph->values()[v].shape;
    }
    std::vector<std::vector<double>> out;
    for (const Node& n : graph->nodes()) {
      std::vector<reference::Operand> operands;
      for (uint32_t in : n.inputs) {
        const float* p = graph->values()[in].constant ? graph->values()[in].data : held[in].data();
        operands.push_back({shapes[in], p});
      }
      shapes[n.output] = output_shape(ShapeRuleArgs{n, shapes});
      out.push_back(reference::run(n, operands, shapes[n.output]));
      held[n.output].assign(out.back().begin(), out.back().end());
    }
    return out;
  }

  int64_t c, f;
  std::vector<std::vector<float>> data;
  std::shared_ptr<const Graph> graph;
};

constexpr size_t kFc1 = 1, kDw = 2, kFc2 = 3;  // node indices

// A batch of n images of h x w on `threads` threads.
struct Case {
  int64_t n, h, w;
  int threads;
};

// A case's input shape, a random input and the reference's output for it.
struct CaseData {
  CaseData(const FfnGraph& ffn, const Case& c)
      : shape{c.n, c.h, c.w, ffn.c},
        x(random_vector(static_cast<size_t>(element_count(shape)), static_cast<uint32_t>(c.n))),
        want(ffn.reference(x, shape).back()) {}
  Shape shape;
  std::vector<float> x;
  std::vector<double> want;
};

}  // namespace

TEST_CASE("a fused FFN computes what its nodes compute one by one") {
  // 100 hidden channels: six registers of 16 and a tail of 4 (or 12 of 8,
  // and 4); 61 x 45 positions of 100 floats: 1.1 MB per image, enough for
  // the backend to fuse, in bands of rows. Rows of 461 and 1501 positions
  // (184 and 600 KB) run in bands of one row, whole and in three tiles of
  // columns.
  const FfnGraph ffn(20, 100);
  // Images split in parts (1 on 2 threads, 3 on 2, 3 on 8), whole images
  // (2 on 2), and whole images unevenly (9 on 2: at least 4 per thread).
  const Case cases[] = {{1, 61, 45, 2},  {3, 61, 45, 2}, {3, 61, 45, 8}, {2, 61, 45, 2},
                        {9, 61, 45, 2},  {1, 7, 461, 2}, {3, 7, 461, 2}, {1, 5, 1501, 2},
                        {2, 5, 1501, 2}, {3, 5, 1501, 8}};
  for (cpu::Isa isa : test::isas_present()) {
    cpu::force_isa(isa);
    for (const Case& c : cases) {
      const CaseData d(ffn, c);
      for (bool fusing : {true, false}) {
        Executor executor(ffn.graph, cpu_backend(c.threads, fusing), c.threads);
        const float* got = executor.run(d.x.data(), d.shape)[0];
        const double err = test::rel_l2(got, d.want.data(), d.want.size());
        const std::string what = std::string(cpu::isa_name(isa)) + ", batch " +
                                 std::to_string(c.n) + " of " + std::to_string(c.h) + "x" +
                                 std::to_string(c.w) + ", " + std::to_string(c.threads) +
                                 " threads, " + (fusing ? "fused" : "node by node");
        INFO(what << ": rel L2 " << err);
        CHECK(err <= 1e-5);
        CHECK((executor.fused_kind(kFc1) != nullptr) == fusing);
        if (fusing) {
          CHECK(*executor.fused_kind(kFc2) == "Linear+Conv2d+Linear");
          CHECK(executor.fused_kind(0) == nullptr);  // "pre" runs alone
        }
      }
    }
  }
  cpu::reset_isa();
}

TEST_CASE("in bfloat16 a fused FFN is as close to the reference as its nodes one by one") {
  // The fused chain keeps the hidden rows in float32 (rounding only the
  // convolution's output, fc2's source): never farther from the float64
  // reference than the nodes in bfloat16 one by one, on every path of our
  // loops, in bands, in parts of images and in tiles of one row.
  std::string no_bf16;
  if (!cpu::cpu_bf16_support(&no_bf16)) {
    MESSAGE("skipped: CPU bf16 (" << no_bf16 << ")");
    return;
  }
  const FfnGraph ffn(20, 100);
  const Case cases[] = {{1, 61, 45, 2}, {3, 61, 45, 8}, {2, 61, 45, 2}, {1, 5, 1501, 2}};
  for (cpu::Isa isa : test::isas_present()) {
    cpu::force_isa(isa);
    for (const Case& c : cases) {
      const CaseData d(ffn, c);
      double err[2];  // node by node, fused
      for (bool fusing : {false, true}) {
        auto backend = std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>(),
                                                         c.threads, DType::kBFloat16);
        backend->set_fusing(fusing);
        Executor executor(ffn.graph, std::move(backend), c.threads);
        const float* got = executor.run(d.x.data(), d.shape)[0];
        err[fusing] = test::rel_l2(got, d.want.data(), d.want.size());
        CHECK((executor.fused_kind(kFc1) != nullptr) == fusing);
      }
      INFO(cpu::isa_name(isa) << ", batch " << c.n << " of " << c.h << "x" << c.w << ", "
                              << c.threads << " threads: rel L2 node by node " << err[0]
                              << ", fused " << err[1]);
      CHECK(err[0] <= 8e-3);
      CHECK(err[1] <= err[0] * 1.05);
    }
  }
  cpu::reset_isa();
}

TEST_CASE("an image's result does not depend on the batch it comes in") {
  // Batch 1 and 3 cut images into parts on 2 threads, batch 2 and 4 not:
  // the rows of each image must come out the same, bit for bit, in bands
  // of rows and in tiles of one row alike, in float32 and bfloat16.
  const FfnGraph ffn(20, 100);
  std::vector<DType> precisions = {DType::kFloat32};
  if (cpu::cpu_bf16_support()) precisions.push_back(DType::kBFloat16);
  for (DType precision : precisions) {
    for (const std::pair<int64_t, int64_t>& size :
         {std::pair<int64_t, int64_t>{61, 45}, {5, 1501}}) {
      // (Named copies: doctest's INFO captures them, which C++20 forbids for bindings.)
      const int64_t h = size.first, w = size.second;
      const Shape one = {1, h, w, ffn.c};
      const auto image = static_cast<size_t>(element_count(one));
      const std::vector<float> x = random_vector(4 * image, 11);
      Executor executor(
          ffn.graph,
          std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>(), 2, precision), 2);
      const float* alone = executor.run(x.data(), one)[0];
      const std::vector<float> first(alone, alone + image);
      for (int64_t n : {2, 3, 4}) {
        const Shape shape = {n, h, w, ffn.c};
        const float* batch = executor.run(x.data(), shape)[0];
        INFO(dtype_short_name(precision) << ", " << h << "x" << w << ", batch " << n);
        CHECK(std::equal(first.begin(), first.end(), batch));
      }
      CHECK(executor.fused_kind(kFc1) != nullptr);
    }
  }
}

TEST_CASE("fusion leaves alone what is asked for, what is observed, and small FFNs") {
  const FfnGraph ffn(20, 100);
  const Shape shape = {1, 61, 45, ffn.c};
  const std::vector<float> x = random_vector(static_cast<size_t>(element_count(shape)), 7);
  const std::vector<std::vector<double>> want = ffn.reference(x, shape);
  Executor executor(ffn.graph, cpu_backend(2, true), 2);

  // The depthwise output asked for beside y: it must exist, so no fusion.
  const std::vector<uint32_t> both = {9, 12};
  const std::span<const float* const> out = executor.run(x.data(), shape, both);
  CHECK(test::rel_l2(out[0], want[kDw].data(), want[kDw].size()) <= 1e-5);
  CHECK(test::rel_l2(out[1], want[kFc2].data(), want[kFc2].size()) <= 1e-5);
  CHECK(executor.fused_kind(kFc1) == nullptr);

  // An observed run sees every node's output, the chain's included.
  size_t seen = 0;
  executor.run_observed(x.data(), shape, [&](size_t node, const float* data, const Shape& s) {
    CHECK(test::rel_l2(data, want[node].data(), static_cast<size_t>(element_count(s))) <= 1e-5);
    ++seen;
  });
  CHECK(seen == 4);
  CHECK(executor.fused_kind(kFc1) == nullptr);

  // The declared output: fused.
  const float* y = executor.run(x.data(), shape)[0];
  CHECK(test::rel_l2(y, want[kFc2].data(), want[kFc2].size()) <= 1e-5);
  CHECK(executor.fused_kind(kFc1) != nullptr);

  // A map whose hidden activations fit the caches runs node by node.
  Executor small(ffn.graph, cpu_backend(2, true), 2);
  const Shape little = {1, 9, 7, ffn.c};
  small.run(x.data(), little);
  CHECK(small.fused_kind(kFc1) == nullptr);
}

namespace {

// Proposes one fusion, whatever the plan: to see the executor check it.
class ProposingBackend : public cpu::CpuBackend {
 public:
  explicit ProposingBackend(Fusion f)
      : cpu::CpuBackend(std::make_shared<cpu::WeightCache>(), 1), fusion_(std::move(f)) {}
  std::vector<Fusion> fuse(const Graph&, const std::vector<size_t>&, const std::vector<Shape>&,
                           const std::vector<int>&) override {
    return {fusion_};
  }

 private:
  Fusion fusion_;
};

}  // namespace

TEST_CASE("the executor refuses a fusion its plan cannot run") {
  const FfnGraph ffn(4, 8);
  const Shape shape = {1, 5, 6, ffn.c};
  const std::vector<float> x = random_vector(static_cast<size_t>(element_count(shape)), 9);
  const Fusion bad[] = {
      {{kFc1, kFc2}, {3, 4, 5, 10, 11, 0}, "not consecutive"},
      {{0, kFc1}, {0, 1, 2, 4, 5}, "a chain the backend has no kernel for"},
      {{kFc1, kDw}, {3, 4, 5, 6, 7, 8}, "a passed value among the inputs"},
      {{kFc2}, {9, 10, 11, 0}, "one node"},
  };
  for (const Fusion& f : bad) {
    Executor executor(ffn.graph, std::make_unique<ProposingBackend>(f), 1);
    INFO(f.kind);
    if (f.nodes.front() == 0) {
      // pre -> fc1 is a chain the executor can run (t has one reader), but
      // the CPU backend has no such kernel and says so.
      CHECK_THROWS_WITH_AS(executor.run(x.data(), shape), doctest::Contains("fuses no nodes"),
                           Error);
    } else {
      CHECK_THROWS_WITH_AS(executor.run(x.data(), shape), doctest::Contains("the plan cannot run"),
                           Error);
    }
  }
}
