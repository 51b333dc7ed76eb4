// The executor's plan cache: bounded, least recently used first out, and a
// re-planned shape computes what it did before.
#include <doctest/doctest.h>

#include "formats/rvlt/model_file.h"
#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/executor.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::runtime;
using ravlt::test::TempDir;
using ravlt::test::testdata;

TEST_CASE("the plan cache holds at most its bound and evicts the least recently used") {
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const auto graph = Graph::load(rvlt::ModelFile::open(path));
  Executor executor(graph, std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>()),
                    1, 0, /*max_plans=*/2);
  const Shape a = {1, 3, 33, 47}, b = {1, 3, 40, 40}, c = {2, 3, 32, 36};
  const std::vector<float> input = ravlt::test::random_vector(2 * 3 * 47 * 47, 1);
  auto output_of = [&](const Shape& s) {
    const float* out = executor.run(input.data(), s)[0];
    return std::vector<float>(out, out + element_count(executor.plan(s).output_shapes[0]));
  };
  const std::vector<float> first_a = output_of(a);
  output_of(b);
  CHECK(executor.cached_plans() == 2);
  output_of(a);  // a is now the most recently used: c evicts b
  output_of(c);
  CHECK(executor.cached_plans() == 2);
  const PlanStats& kept = executor.plan(a);  // still cached: no planning, same stats object
  CHECK(&kept == &executor.plan(a));
  CHECK(output_of(a) == first_a);
  output_of(b);  // re-planned, evicting c (a was used last)
  CHECK(executor.cached_plans() == 2);
  CHECK(output_of(a) == first_a);
}

TEST_CASE("a plan computes the outputs asked, only what they need, each kept to the end") {
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const auto graph = Graph::load(rvlt::ModelFile::open(path));
  Executor executor(graph, std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>()),
                    1);
  const auto& nodes = graph->nodes();
  const uint32_t logits = graph->outputs()[0];
  const int head = graph->producer(logits);
  REQUIRE(head == static_cast<int>(nodes.size()) - 1);
  const uint32_t pooled = nodes[static_cast<size_t>(head)].inputs[0];
  const Shape shape = {2, 3, 33, 47};
  const std::vector<float> input = ravlt::test::random_vector(2 * 3 * 33 * 47, 4);

  const std::vector<uint32_t> both = {pooled, logits};
  const PlanStats& stats = executor.plan(shape, both);
  REQUIRE(stats.output_shapes.size() == 2);
  CHECK(stats.output_shapes[0] == Shape{2, 96});
  CHECK(stats.output_shapes[1] == Shape{2, 11});
  CHECK(stats.output_bytes >= (2 * 96 + 2 * 11) * sizeof(float));
  const std::span<const float* const> out = executor.run(input.data(), shape, both);
  const std::vector<float> embedding(out[0], out[0] + 2 * 96), scores(out[1], out[1] + 2 * 11);

  // The pooled value alone: the head does not run, the values agree.
  executor.set_profiling(true);
  const std::vector<uint32_t> one = {pooled};
  const float* alone = executor.run(input.data(), shape, one)[0];
  CHECK(std::vector<float>(alone, alone + 2 * 96) == embedding);
  CHECK(executor.node_seconds()[static_cast<size_t>(head)] == 0.0);
  CHECK(executor.node_seconds()[static_cast<size_t>(head) - 1] > 0.0);
  CHECK(executor.cached_plans() == 2);  // one plan per set of outputs
  // The declared outputs by default.
  const float* declared = executor.run(input.data(), shape)[0];
  CHECK(std::vector<float>(declared, declared + 2 * 11) == scores);

  const std::vector<uint32_t> twice = {logits, logits};
  CHECK_THROWS_WITH_AS(executor.plan(shape, twice), "output 'logits' is requested twice", Error);
  const std::vector<uint32_t> weight = {nodes[static_cast<size_t>(head)].inputs[1]};
  CHECK_THROWS_WITH_AS(executor.plan(shape, weight), doctest::Contains("is not computed"), Error);
  CHECK(executor.cached_plans() == 3);  // refused plans are not kept
}
