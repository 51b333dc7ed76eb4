// The CPU backend's behaviour beyond its values (backend_ops_test checks
// those): work split by the session's threads, oneDNN failures reported.
#include <doctest/doctest.h>

#include "ravlt/error.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/dnnl_util.h"

using namespace ravlt;
using namespace ravlt::runtime;

TEST_CASE("RALA splits the tokens by the session's threads, not the machine's cores") {
  // One image and one head: one task, which a session of 8 threads splits
  // into 8 parts (each with its own partial sums in scratch).
  const int64_t d = 16, c = d;
  std::vector<float> angle(static_cast<size_t>(d / 2), 1.0f);
  std::vector<Value> values(4);
  values[0].shape = {1, 64, 64, 4 * c};
  values[1].shape = {1, 64, 64, c};
  values[2].constant = true;
  values[2].shape = {d / 2};
  values[2].data = angle.data();
  values[3].shape = {1, 64, 64, c};
  Node node;
  node.name = "rala";
  node.op = Op::kRalaAttention;
  node.inputs = {0, 1, 2};
  node.output = 3;
  node.heads = 1;
  node.head_dim = static_cast<int>(d);
  const auto graph = Graph::from_parts(values, {node}, 0, {3});
  std::vector<Shape> shapes;
  for (const Value& v : values) shapes.push_back(v.shape);
  auto scratch_for = [&](int threads) {
    cpu::CpuBackend backend(std::make_shared<cpu::WeightCache>(), threads);
    return backend.prepare(*graph, graph->nodes()[0], shapes)->scratch_bytes();
  };
  const size_t one = scratch_for(1), eight = scratch_for(8);
  // Per extra part: a d vector, a d x d matrix and a weight, in double.
  CHECK(eight - one == 7 * (d + d * d + 1) * sizeof(double));
}

TEST_CASE("a oneDNN primitive that fails to execute is an Error naming the node") {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc desc({4}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
  const dnnl::reorder reorder(dnnl::reorder::primitive_desc(engine, desc, engine, desc));
  cpu::PrimitiveArgs args("stage1.conv");  // no source, no destination: oneDNN refuses
  CHECK_THROWS_WITH_AS(args.execute(reorder, stream), doctest::Contains("node 'stage1.conv'"),
                       Error);
}
