// The CPU backend's depthwise convolution of a channel slice read in place
// (runtime/cpu/depthwise_conv2d.h: RAVLT's lepe on v, channels 2C..3C of
// the qkvo rows): the fused pair computes what the two nodes compute one by
// one (against the reference kernels, in double), 3x3 and 5x5, channels
// beyond whole registers, odd sizes, batches, thread counts, on every
// instruction-set path this CPU has (fused with AVX-512 only); a slice
// asked for, and a convolution ours leaves to oneDNN, are not fused.
#include <doctest/doctest.h>

#include <string>

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

// x (N, H, W, 4C) -> v = x[..., 2C:3C] -> lepe (K x K depthwise, bias).
// Values: 0 x, 1 v, 2..3 the convolution's weight and bias, 4 lepe.
struct SliceConvGraph {
  SliceConvGraph(int64_t channels, int kernel) : c(channels), k(kernel) {
    const auto cs = static_cast<size_t>(c), ks = static_cast<size_t>(k);
    weight = random_vector(cs * ks * ks, 3, 0.3f);
    bias = random_vector(cs, 4, 0.3f);
    std::vector<Value> values(5);
    for (uint32_t v = 0; v < 5; ++v) values[v].name = "v" + std::to_string(v);
    values[0].shape = {-1, -1, -1, 4 * c};
    values[2] = {"w", true, {c, 1, k, k}, weight.data()};
    values[3] = {"b", true, {c}, bias.data()};
    Node slice;
    slice.name = "attn.v";
    slice.op = Op::kChannelSlice;
    slice.inputs = {0};
    slice.output = 1;
    slice.slice_begin = static_cast<int>(2 * c);
    slice.slice_end = static_cast<int>(3 * c);
    Node conv;
    conv.name = "attn.lepe";
    conv.op = Op::kConv2d;
    conv.inputs = {1, 2, 3};
    conv.output = 4;
    conv.conv = {k, k, 1, 1, k / 2, k / 2, static_cast<int>(c)};
    graph = Graph::from_parts(values, {slice, conv}, 0, {4});
  }

  // Both nodes' outputs by the reference kernels (double).
  std::vector<std::vector<double>> reference(const std::vector<float>& x,
                                             const Shape& shape) const {
    const Node& slice = graph->nodes()[0];
    const Node& conv = graph->nodes()[1];
    std::vector<Shape> shapes = {shape, {}, {c, 1, k, k}, {c}, {}};
    shapes[1] = output_shape(ShapeRuleArgs{slice, shapes});
    const std::vector<double> v = reference::run(slice, {{shape, x.data()}}, shapes[1]);
    const std::vector<float> vf(v.begin(), v.end());
    shapes[4] = output_shape(ShapeRuleArgs{conv, shapes});
    return {
        v, reference::run(
               conv, {{shapes[1], vf.data()}, {shapes[2], weight.data()}, {shapes[3], bias.data()}},
               shapes[4])};
  }

  int64_t c;
  int k;
  std::vector<float> weight, bias;
  std::shared_ptr<const Graph> graph;
};

}  // namespace

TEST_CASE("a depthwise convolution of a channel slice, fused, computes what the two nodes do") {
  struct Case {
    int64_t c;
    int k;
    int64_t n, h, w;
    int threads;
  };
  // 37 channels: two registers of 16 and a tail of 5 (four of 8 and 5);
  // widths that take blocks of 8, 4, 2 and 1 columns; an image lower than
  // the kernel; batches over thread counts that do not divide them.
  const Case cases[] = {{37, 5, 1, 9, 23, 2},
                        {37, 3, 3, 7, 17, 2},
                        {64, 5, 2, 3, 15, 3},
                        {48, 3, 1, 14, 14, 2},
                        {16, 5, 3, 6, 3, 2}};
  for (cpu::Isa isa : test::isas_present()) {
    cpu::force_isa(isa);
    for (const Case& c : cases) {
      const SliceConvGraph g(c.c, c.k);
      const Shape shape = {c.n, c.h, c.w, 4 * c.c};
      const std::vector<float> x =
          random_vector(static_cast<size_t>(element_count(shape)), static_cast<uint32_t>(c.h));
      const std::vector<double> want = g.reference(x, shape).back();
      for (bool fusing : {true, false}) {
        Executor executor(g.graph, cpu_backend(c.threads, fusing), c.threads);
        const float* got = executor.run(x.data(), shape)[0];
        const double err = test::rel_l2(got, want.data(), want.size());
        const std::string what = std::string(cpu::isa_name(isa)) + ", " + std::to_string(c.c) +
                                 " channels " + std::to_string(c.k) + "x" + std::to_string(c.k) +
                                 ", batch " + std::to_string(c.n) + " of " + std::to_string(c.h) +
                                 "x" + std::to_string(c.w) + ", " + std::to_string(c.threads) +
                                 " threads, " + (fusing ? "fused" : "node by node");
        INFO(what << ": rel L2 " << err);
        CHECK(err <= 1e-5);
        // Ours runs with AVX-512 only (elsewhere oneDNN's, node by node).
        const std::string* kind = executor.fused_kind(1);
        REQUIRE((kind != nullptr) == (fusing && isa == cpu::Isa::kAvx512));
        if (kind != nullptr) CHECK(*kind == "ChannelSlice+Conv2d");
      }
    }
  }
  cpu::reset_isa();
}

TEST_CASE("a slice asked for, or a convolution left to oneDNN, is not fused") {
  if (cpu::detected_isa() != cpu::Isa::kAvx512) {
    MESSAGE("skipped: this CPU has no AVX-512 path, where the pair is fused");
    return;
  }
  const SliceConvGraph g(20, 5);
  const Shape shape = {1, 9, 11, 80};
  const std::vector<float> x = random_vector(static_cast<size_t>(element_count(shape)), 5);
  const std::vector<std::vector<double>> want = g.reference(x, shape);
  Executor executor(g.graph, cpu_backend(2, true), 2);
  const std::vector<uint32_t> both = {1, 4};
  const std::span<const float* const> out = executor.run(x.data(), shape, both);
  CHECK(test::rel_l2(out[0], want[0].data(), want[0].size()) == 0.0);
  CHECK(test::rel_l2(out[1], want[1].data(), want[1].size()) <= 1e-5);
  CHECK(executor.fused_kind(1) == nullptr);
  // The same executor asked for lepe alone: now the pair fuses (a plan of
  // its own), and computes the same.
  const float* lepe = executor.run(x.data(), shape)[0];
  CHECK(test::rel_l2(lepe, want[1].data(), want[1].size()) <= 1e-5);
  CHECK(executor.fused_kind(1) != nullptr);

  // 512 channels: oneDNN's convolution (ours measured slower there).
  const SliceConvGraph wide(512, 3);
  const Shape wide_shape = {1, 5, 6, 2048};
  const std::vector<float> xw = random_vector(static_cast<size_t>(element_count(wide_shape)), 6);
  const std::vector<double> want_wide = wide.reference(xw, wide_shape).back();
  Executor unfused(wide.graph, cpu_backend(2, true), 2);
  const float* got = unfused.run(xw.data(), wide_shape)[0];
  CHECK(test::rel_l2(got, want_wide.data(), want_wide.size()) <= 1e-5);
  CHECK(unfused.fused_kind(1) == nullptr);
}
