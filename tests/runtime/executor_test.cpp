// The executor's plan cache: bounded, least recently used first out, and a
// re-planned shape computes what it did before.
#include <doctest/doctest.h>

#include "formats/rvlt/model_file.h"
#include "ravlt/convert.h"
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
