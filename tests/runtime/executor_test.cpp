// The executor's plan cache: bounded, least recently used first out, and a
// re-planned shape computes what it did before.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <set>

#include <unistd.h>

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

namespace {

struct LimitedRun {
  std::vector<float> logits;
  PlanStats stats;
};

// The declared output for `shape` on a fresh executor (2 threads) whose
// CPU backend goes image by image from `limit` bytes (0: never).
LimitedRun run_with_limit(const std::shared_ptr<const Graph>& graph, size_t limit,
                          const Shape& shape, const std::vector<float>& input,
                          DType precision = DType::kFloat32, bool profile = false) {
  auto backend =
      std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>(), 2, precision);
  backend->set_image_by_image_bytes(limit);
  Executor executor(graph, std::move(backend), 2);
  executor.set_profiling(profile);
  LimitedRun r;
  r.stats = executor.plan(shape);
  const float* out = executor.run(input.data(), shape)[0];
  r.logits.assign(out, out + element_count(r.stats.output_shapes[0]));
  if (profile) {
    // Every node that ran has its time, the image-by-image ones included.
    CHECK(executor.node_seconds()[0] > 0.0);
  }
  return r;
}

std::shared_ptr<const Graph> custom_graph(const TempDir& dir) {
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  return Graph::load(rvlt::ModelFile::open(path));
}

double largest_magnitude(const std::vector<float>& v) {
  double m = 0.0;
  for (float x : v) m = std::max(m, std::abs(static_cast<double>(x)));
  return m;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return worst;
}

}  // namespace

TEST_CASE("a batch runs its first nodes image by image where they outgrow the limit") {
  TempDir dir;
  const auto graph = custom_graph(dir);
  const Shape shape = {3, 3, 33, 47};
  const std::vector<float> input = ravlt::test::random_vector(3 * 3 * 33 * 47, 9);
  const LimitedRun batched = run_with_limit(graph, 0, shape, input);
  CHECK(batched.stats.image_by_image_nodes == 0);
  const double scale = largest_magnitude(batched.logits);
  REQUIRE(scale > 0.0);

  // Limits from 1 KB to 4 MB put the boundary at several places.
  std::set<size_t> boundaries;
  for (size_t limit = 1024; limit <= (size_t{4} << 20); limit *= 2) {
    CAPTURE(limit);
    const LimitedRun split = run_with_limit(graph, limit, shape, input);
    const size_t nodes = split.stats.image_by_image_nodes;
    CAPTURE(nodes);
    CHECK(nodes < graph->nodes().size());
    boundaries.insert(nodes);
    CHECK(max_abs_difference(split.logits, batched.logits) <= 1e-5 * scale);
    CHECK(split.stats.arena_bytes >= split.stats.lower_bound);
    if (nodes > 0) CHECK(split.stats.arena_bytes < batched.stats.arena_bytes);
  }
  CHECK(boundaries.size() >= 3);  // none, and at least two places
  CHECK(boundaries.count(0) == 1);

  // Profiled: the same numbers.
  const LimitedRun small = run_with_limit(graph, 1024, shape, input);
  REQUIRE(small.stats.image_by_image_nodes > 0);
  const LimitedRun profiled = run_with_limit(graph, 1024, shape, input, DType::kFloat32, true);
  CHECK(profiled.stats.image_by_image_nodes == small.stats.image_by_image_nodes);
  CHECK(profiled.logits == small.logits);

  // One image: nothing to split.
  const Shape one = {1, 3, 33, 47};
  CHECK(run_with_limit(graph, 1024, one, input).stats.image_by_image_nodes == 0);

  // An output asked of the first nodes keeps the run batched.
  auto backend = std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>(), 2);
  backend->set_image_by_image_bytes(1024);
  Executor executor(graph, std::move(backend), 2);
  const std::vector<uint32_t> early = {graph->nodes()[0].output, graph->outputs()[0]};
  CHECK(executor.plan(shape, early).image_by_image_nodes == 0);
  const float* logits = executor.run(input.data(), shape, early)[1];
  CHECK(max_abs_difference(std::vector<float>(logits, logits + batched.logits.size()),
                           batched.logits) <= 1e-5 * scale);
}

TEST_CASE("image by image in bfloat16: the batched answer") {
  if (!cpu::cpu_bf16_support()) {
    MESSAGE("skipped: this CPU has no bfloat16 arithmetic");
    return;
  }
  TempDir dir;
  const auto graph = custom_graph(dir);
  const Shape shape = {3, 3, 33, 47};
  const std::vector<float> input = ravlt::test::random_vector(3 * 3 * 33 * 47, 10);
  const LimitedRun batched = run_with_limit(graph, 0, shape, input, DType::kBFloat16);
  const LimitedRun split = run_with_limit(graph, 16384, shape, input, DType::kBFloat16);
  REQUIRE(split.stats.image_by_image_nodes > 0);
  CHECK(max_abs_difference(split.logits, batched.logits) <=
        1e-3 * largest_magnitude(batched.logits));
}

namespace {

// A CPU backend whose next preparation fails once the executor ends the
// packing's deferral: the packing after the first run fails.
class FailingRepackBackend : public cpu::CpuBackend {
 public:
  using CpuBackend::CpuBackend;
  std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                  const std::vector<Shape>& shapes) override {
    if (fail_.exchange(false)) throw Error("node '" + node.name + "': injected failure");
    return CpuBackend::prepare(graph, node, shapes);
  }
  void end_packing_deferral() override {
    fail_ = true;
    CpuBackend::end_packing_deferral();
  }

 private:
  std::atomic<bool> fail_{false};
};

}  // namespace

TEST_CASE("a packing after the first run that fails leaves the plan reading the weights in place") {
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const auto graph = Graph::load(rvlt::ModelFile::open(path));
  auto backend = std::make_unique<FailingRepackBackend>(std::make_shared<cpu::WeightCache>());
  backend->set_weight_packing(true, /*after_first_run=*/true);
  Executor executor(graph, std::move(backend), 1);
  const Shape shape = {2, 3, 33, 47};
  const std::vector<float> input = ravlt::test::random_vector(2 * 3 * 33 * 47, 6);
  const float* first = executor.run(input.data(), shape)[0];
  const std::vector<float> want(first, first + 2 * 11);
  const float* again = executor.run(input.data(), shape)[0];  // waits for the packing
  const Executor::DeferredPacking& deferred = executor.deferred_packing();
  if (!deferred.done) {
    MESSAGE("oneDNN has no brgemm matmul here: every weight was packed, nothing deferred");
    return;
  }
  CHECK(deferred.error.find("injected failure") != std::string::npos);
  CHECK(std::vector<float>(again, again + 2 * 11) == want);  // the plan in place, unchanged
  // Nothing is deferred again: a new shape is planned packed, and runs.
  const float* other = executor.run(input.data(), Shape{1, 3, 40, 40})[0];
  CHECK(std::isfinite(other[0]));
  CHECK(executor.deferred_packing().error == deferred.error);
}

TEST_CASE("a packed plan's runs read nothing in the model file: cut short mid-run, it completes") {
  // Biases, norms and the like are copied out of the mapping with the packed
  // weights (cpu::CpuBackend::constant), so a file shortened under a run
  // cannot end the process there (a read past a mapped file's end is a
  // SIGBUS); the next run refuses.
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const std::vector<uint8_t> full = ravlt::test::read_file(path);
  const Shape shape = {2, 3, 33, 47};
  const std::vector<float> input = ravlt::test::random_vector(2 * 3 * 33 * 47, 7);
  for (const bool deferred : {false, true}) {
    CAPTURE(deferred);
    ravlt::test::write_file(path, full);
    const auto graph = Graph::load(rvlt::ModelFile::open(path));
    auto backend = std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>());
    backend->set_weight_packing(true, /*after_first_run=*/deferred);
    Executor executor(graph, std::move(backend), 1);
    executor.run(input.data(), shape);  // deferred: in place, then packs
    const float* packed = executor.run(input.data(), shape)[0];
    const std::vector<float> want(packed, packed + 2 * 11);
    const size_t last = graph->nodes().size() - 1;  // the head: the logits
    std::vector<float> got;
    bool cut = false;
    executor.run_observed(input.data(), shape, [&](size_t node, const float* out, const Shape& s) {
      if (!cut) {  // after the first node: all but one still to run
        REQUIRE(::truncate(path.c_str(), 4096) == 0);
        cut = true;
      }
      if (node == last) got.assign(out, out + element_count(s));
    });
    CHECK(cut);
    CHECK(got == want);
    CHECK_THROWS_WITH_AS(executor.run(input.data(), shape),
                         doctest::Contains("written after it was opened"), Error);
  }
}
