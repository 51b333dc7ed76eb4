// The non-attention CPU kernels (oneDNN-backed and our own) against naive
// loops at odd sizes, with their fused activations and residuals.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "runtime/cpu/isa.h"
#include "runtime/cpu/kernels.h"

using namespace ravlt::runtime;
using namespace ravlt::runtime::cpu;

namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng) * scale;
  return v;
}

// Builds a one-node graph: values[0..k) inputs (constants where `data` is
// set), values[k] the output; prepares and runs its CPU kernel.
std::vector<float> run_node(Node node, std::vector<Shape> shapes,
                            const std::vector<const std::vector<float>*>& inputs,
                            const std::vector<bool>& constant) {
  std::vector<Value> values(shapes.size());
  for (size_t i = 0; i + 1 < shapes.size(); ++i) {
    values[i].shape = shapes[i];
    values[i].constant = constant[i];
    if (constant[i]) values[i].data = inputs[i]->data();
  }
  values.back().shape = shapes.back();
  node.name = "node";
  node.output = static_cast<uint32_t>(shapes.size() - 1);
  for (uint32_t i = 0; i + 1 < shapes.size(); ++i) node.inputs.push_back(i);
  auto graph = Graph::from_parts(values, {node}, 0, node.output);
  CpuContext context;
  context.weights = std::make_shared<WeightCache>();
  auto kernel = make_kernel(PrepareArgs{*graph, graph->nodes()[0], shapes, context});
  std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
  auto* aligned =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
  std::vector<float> out(static_cast<size_t>(element_count(shapes.back())));
  std::vector<const float*> pointers;
  for (const auto* in : inputs) pointers.push_back(in->data());
  kernel->run(pointers.data(), out.data(), aligned);
  return out;
}

double activate(double x, Activation a) {
  if (a == Activation::kGelu) return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  if (a == Activation::kSwish) return x / (1 + std::exp(-x));
  return x;
}

void check_close(const std::vector<float>& got, const std::vector<double>& want,
                 double tol = 1e-5) {
  REQUIRE(got.size() == want.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  CHECK(std::sqrt(err / norm) < tol);
}

}  // namespace

TEST_CASE("Conv2d: dense and depthwise, strides 1 and 2, fused activations") {
  struct Case {
    int64_t n, h, w, cin, cout, k, stride, groups;
    Activation act;
  };
  const Case cases[] = {{2, 9, 7, 3, 5, 3, 2, 1, Activation::kGelu},
                        {1, 8, 11, 6, 6, 3, 1, 1, Activation::kNone},
                        {2, 7, 5, 10, 10, 5, 1, 10, Activation::kNone},
                        {1, 13, 6, 12, 12, 3, 1, 12, Activation::kSwish},
                        {1, 5, 5, 4, 8, 3, 2, 1, Activation::kSwish}};
  for (const Case& c : cases) {
    const int64_t oh = (c.h + 2 * (c.k / 2) - c.k) / c.stride + 1,
                  ow = (c.w + 2 * (c.k / 2) - c.k) / c.stride + 1;
    const int64_t cin_g = c.cin / c.groups, cout_g = c.cout / c.groups;
    const auto x = random_vector(static_cast<size_t>(c.n * c.h * c.w * c.cin), 1);
    const auto w = random_vector(static_cast<size_t>(c.cout * cin_g * c.k * c.k), 2, 0.3f);
    const auto b = random_vector(static_cast<size_t>(c.cout), 3);
    Node node;
    node.op = Op::kConv2d;
    node.conv = {static_cast<int>(c.k),      static_cast<int>(c.k),     static_cast<int>(c.stride),
                 static_cast<int>(c.stride), static_cast<int>(c.k / 2), static_cast<int>(c.k / 2),
                 static_cast<int>(c.groups)};
    node.activation = c.act;
    const auto got = run_node(
        node, {{c.n, c.h, c.w, c.cin}, {c.cout, cin_g, c.k, c.k}, {c.cout}, {c.n, oh, ow, c.cout}},
        {&x, &w, &b}, {false, true, true});
    std::vector<double> want(got.size());
    for (int64_t bn = 0; bn < c.n; ++bn)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xx = 0; xx < ow; ++xx)
          for (int64_t o = 0; o < c.cout; ++o) {
            double acc = b[static_cast<size_t>(o)];
            const int64_t g = o / cout_g;
            for (int64_t i = 0; i < cin_g; ++i)
              for (int64_t ky = 0; ky < c.k; ++ky)
                for (int64_t kx = 0; kx < c.k; ++kx) {
                  const int64_t iy = y * c.stride + ky - c.k / 2, ix = xx * c.stride + kx - c.k / 2;
                  if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                  acc +=
                      static_cast<double>(
                          w[static_cast<size_t>(((o * cin_g + i) * c.k + ky) * c.k + kx)]) *
                      x[static_cast<size_t>(((bn * c.h + iy) * c.w + ix) * c.cin + g * cin_g + i)];
                }
            want[static_cast<size_t>(((bn * oh + y) * ow + xx) * c.cout + o)] =
                activate(acc, c.act);
          }
    check_close(got, want);
  }
}

TEST_CASE("Linear: GEMM with bias, activation and residual") {
  for (int variant = 0; variant < 3; ++variant) {
    const int64_t m = 37, k = 19, o = 23;
    const auto x = random_vector(static_cast<size_t>(m * k), 4);
    const auto w = random_vector(static_cast<size_t>(o * k), 5, 0.3f);
    const auto b = random_vector(static_cast<size_t>(o), 6);
    const auto r = random_vector(static_cast<size_t>(m * o), 7);
    Node node;
    node.op = Op::kLinear;
    node.activation = variant == 1   ? Activation::kGelu
                      : variant == 2 ? Activation::kSwish
                                     : Activation::kNone;
    std::vector<Shape> shapes = {{1, m, 1, k}, {o, k}, {o}};
    std::vector<const std::vector<float>*> inputs = {&x, &w, &b};
    std::vector<bool> constant = {false, true, true};
    const bool residual = variant == 0;
    if (residual) {
      shapes.push_back({1, m, 1, o});
      inputs.push_back(&r);
      constant.push_back(false);
    }
    shapes.push_back({1, m, 1, o});
    const auto got = run_node(node, shapes, inputs, constant);
    std::vector<double> want(got.size());
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < o; ++j) {
        double acc = b[static_cast<size_t>(j)];
        for (int64_t t = 0; t < k; ++t)
          acc += static_cast<double>(x[static_cast<size_t>(i * k + t)]) *
                 w[static_cast<size_t>(j * k + t)];
        want[static_cast<size_t>(i * o + j)] =
            activate(acc, node.activation) + (residual ? r[static_cast<size_t>(i * o + j)] : 0.0);
      }
    check_close(got, want);
  }
}

TEST_CASE("LayerNorm, ChannelSlice, ToChannelsLast, GlobalAvgPool") {
  const int64_t n = 2, h = 3, w = 5, c = 7;
  const auto x = random_vector(static_cast<size_t>(n * h * w * c), 8, 3.0f);
  // LayerNorm on every instruction-set path, at a width that is not a
  // multiple of the vector width (7) and one that is (48).
  for (int64_t width : {int64_t{7}, int64_t{48}}) {
    const auto xs = random_vector(static_cast<size_t>(n * h * w * width), 11, 3.0f);
    const auto g = random_vector(static_cast<size_t>(width), 12);
    const auto bt = random_vector(static_cast<size_t>(width), 13);
    std::vector<double> want(xs.size());
    for (int64_t r = 0; r < n * h * w; ++r) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < width; ++i)
        mean += xs[static_cast<size_t>(r * width + i)] / static_cast<double>(width);
      for (int64_t i = 0; i < width; ++i)
        var +=
            std::pow(xs[static_cast<size_t>(r * width + i)] - mean, 2) / static_cast<double>(width);
      for (int64_t i = 0; i < width; ++i)
        want[static_cast<size_t>(r * width + i)] = (xs[static_cast<size_t>(r * width + i)] - mean) /
                                                       std::sqrt(var + 1e-6) *
                                                       g[static_cast<size_t>(i)] +
                                                   bt[static_cast<size_t>(i)];
    }
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
        MESSAGE("skipped: this CPU has no " << isa_name(isa));
        continue;
      }
      force_isa(isa);
      Node node;
      node.op = Op::kLayerNorm;
      node.epsilon = 1e-6f;
      INFO(isa_name(isa) << ", " << width << " channels");
      check_close(run_node(node, {{n, h, w, width}, {width}, {width}, {n, h, w, width}},
                           {&xs, &g, &bt}, {false, true, true}),
                  want);
    }
    reset_isa();
  }
  {
    Node node;
    node.op = Op::kChannelSlice;
    node.slice_begin = 2;
    node.slice_end = 5;
    const auto got = run_node(node, {{n, h, w, c}, {n, h, w, 3}}, {&x}, {false});
    for (int64_t r = 0; r < n * h * w; ++r)
      for (int64_t i = 0; i < 3; ++i)
        REQUIRE(got[static_cast<size_t>(r * 3 + i)] == x[static_cast<size_t>(r * c + 2 + i)]);
  }
  {
    Node node;
    node.op = Op::kToChannelsLast;  // x read as (n, c, h, w)
    const auto got = run_node(node, {{n, c, h, w}, {n, h, w, c}}, {&x}, {false});
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t p = 0; p < h * w; ++p)
          REQUIRE(got[static_cast<size_t>((b * h * w + p) * c + ch)] ==
                  x[static_cast<size_t>((b * c + ch) * h * w + p)]);
  }
  {
    Node node;
    node.op = Op::kGlobalAvgPool;
    const auto got = run_node(node, {{n, h, w, c}, {n, c}}, {&x}, {false});
    std::vector<double> want(got.size(), 0.0);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t p = 0; p < h * w; ++p)
        for (int64_t i = 0; i < c; ++i)
          want[static_cast<size_t>(b * c + i)] +=
              x[static_cast<size_t>((b * h * w + p) * c + i)] / static_cast<double>(h * w);
    check_close(got, want, 1e-6);
  }
}
