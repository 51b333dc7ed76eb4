// The CPU backend's behaviour beyond its values (backend_ops_test checks
// those): work split by the session's threads, nodes prepared over them,
// oneDNN failures reported.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "ravlt/error.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/gemm_rate.h"
#include "runtime/cpu/parallel_errors.h"
#include "runtime/preparation_order.h"

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
  // Per extra part: a d vector, a d x d matrix, a weight sum and a logit
  // maximum, in double.
  CHECK(eight - one == 7 * (d + d * d + 2) * sizeof(double));
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

TEST_CASE("an error inside a kernel's parallel loop comes out after it, the process intact") {
  // As the AMX softmax attention runs its oneDNN calls: tasks of an OpenMP
  // loop, some failing. Without the catch the runtime would terminate.
  cpu::ParallelErrors errors;
  std::atomic<int> ran{0};
#pragma omp parallel for schedule(static) num_threads(2)
  for (int t = 0; t < 64; ++t) {
    errors.run([&] {
      ran.fetch_add(1);
      if (t % 8 == 3) throw Error("node 'attn': task " + std::to_string(t) + " failed");
    });
  }
  CHECK_THROWS_WITH_AS(errors.rethrow(), doctest::Contains("node 'attn': task "), Error);
  // The tasks after a failure are skipped (each thread stops at its first).
  CHECK(ran.load() < 64);
  cpu::ParallelErrors none;
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < 8; ++t) none.run([] {});
  CHECK_NOTHROW(none.rethrow());
}

namespace {

// A CPU backend whose prepare() records the threads it ran on and fails for
// the nodes named "bad*", as a oneDNN refusal would.
class RecordingBackend : public cpu::CpuBackend {
 public:
  explicit RecordingBackend(int threads)
      : cpu::CpuBackend(std::make_shared<cpu::WeightCache>(), threads) {}
  std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                  const std::vector<Shape>& shapes) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      threads_seen.insert(std::this_thread::get_id());
      events.push_back("begin " + node.name);
    }
    // Long enough that the other thread takes nodes meanwhile.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events.push_back("end " + node.name);
    }
    if (node.name.rfind("bad", 0) == 0) throw Error("node '" + node.name + "': refused");
    return cpu::CpuBackend::prepare(graph, node, shapes);
  }
  std::set<std::thread::id> threads_seen;
  std::vector<std::string> events;  // "begin NAME", "end NAME", in order

 private:
  std::mutex mutex_;
};

// Every value's declared shape: the shapes of a plan of `graph`.
std::vector<Shape> declared_shapes(const Graph& graph) {
  std::vector<Shape> shapes;
  for (const Value& v : graph.values()) shapes.push_back(v.shape);
  return shapes;
}

// A chain of `names.size()` LayerNorm nodes over a (1, 4, 4, 8) tensor.
std::shared_ptr<const Graph> layer_norm_chain(const std::vector<std::string>& names,
                                              std::vector<float>& params) {
  const int64_t c = 8;
  params.assign(static_cast<size_t>(2 * c), 1.0f);
  std::vector<Value> values(3);
  values[0].shape = {1, 4, 4, c};
  values[1].constant = true;
  values[1].shape = {c};
  values[1].data = params.data();
  values[2].constant = true;
  values[2].shape = {c};
  values[2].data = params.data() + c;
  std::vector<Node> nodes;
  for (const std::string& name : names) {
    Value out;
    out.shape = {1, 4, 4, c};
    values.push_back(out);
    Node n;
    n.name = name;
    n.op = Op::kLayerNorm;
    n.inputs = {nodes.empty() ? 0u : nodes.back().output, 1, 2};
    n.output = static_cast<uint32_t>(values.size() - 1);
    n.epsilon = 1e-6f;
    nodes.push_back(n);
  }
  const uint32_t last = nodes.back().output;
  return Graph::from_parts(values, nodes, 0, {last});
}

}  // namespace

TEST_CASE("a plan's nodes are prepared over the session's threads, every one of them") {
  std::vector<float> params;
  std::vector<std::string> names;
  for (int i = 0; i < 16; ++i) names.push_back("norm" + std::to_string(i));
  const auto graph = layer_norm_chain(names, params);
  std::vector<Shape> shapes = declared_shapes(*graph);
  std::vector<size_t> steps(names.size());
  for (size_t i = 0; i < steps.size(); ++i) steps[i] = i;
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    RecordingBackend backend(threads);
    std::vector<std::unique_ptr<Kernel>> kernels(names.size());
    backend.prepare_all(*graph, steps, {}, shapes, kernels);
    for (const auto& k : kernels) CHECK(k != nullptr);
    CHECK(backend.threads_seen.size() == static_cast<size_t>(threads));
  }
}

namespace {

// The LayerNorm chain with node `odd` made of another kind (its epsilon).
std::shared_ptr<const Graph> chain_with_odd_node(const std::vector<std::string>& names,
                                                 std::vector<float>& params, size_t odd) {
  const auto chain = layer_norm_chain(names, params);
  std::vector<Node> nodes = chain->nodes();
  nodes[odd].epsilon = 1e-5f;
  return Graph::from_parts(chain->values(), nodes, 0, chain->outputs());
}

}  // namespace

TEST_CASE("kernels are prepared first once per kind, the repeats after") {
  std::vector<float> params;
  const std::vector<std::string> names = {"n0", "n1", "n2", "n3", "n4", "n5"};
  const auto graph = chain_with_odd_node(names, params, 2);
  std::vector<Shape> shapes = declared_shapes(*graph);

  SUBCASE("single nodes: a kind is its op, attributes and shapes") {
    const std::vector<size_t> steps = {0, 1, 2, 3, 4, 5};
    PreparationOrder order = preparation_order(*graph, steps, {}, shapes);
    CHECK(order.first == std::vector<size_t>{0, 2});
    CHECK(order.repeats == std::vector<size_t>{1, 3, 4, 5});
    // Other shapes make other kinds: n4 writes value 7, n5 reads it.
    shapes[7] = {1, 4, 5, 8};
    order = preparation_order(*graph, steps, {}, shapes);
    CHECK(order.first == std::vector<size_t>{0, 2, 4, 5});
    CHECK(order.repeats == std::vector<size_t>{1, 3});
  }
  SUBCASE("fusions first, each kind of fusion once; jobs numbered steps then fusions") {
    std::vector<Fusion> fusions(2);
    fusions[0].nodes = {2, 3};  // n2 is the odd one: unlike {4, 5}
    fusions[1].nodes = {4, 5};
    std::vector<size_t> steps = {0, 1};
    PreparationOrder order = preparation_order(*graph, steps, fusions, shapes);
    CHECK(order.first == std::vector<size_t>{2, 3, 0});
    CHECK(order.repeats == std::vector<size_t>{1});
    // {0, 1} and {4, 5} as fusions are one kind, and not the kind of a node.
    fusions = std::vector<Fusion>(3);
    fusions[0].nodes = {0, 1};
    fusions[1].nodes = {2, 3};
    fusions[2].nodes = {4, 5};
    order = preparation_order(*graph, {}, fusions, shapes);
    CHECK(order.first == std::vector<size_t>{0, 1});
    CHECK(order.repeats == std::vector<size_t>{2});
  }
  SUBCASE("prepare_all begins no repeat before the first of every kind is prepared") {
    const std::vector<std::string> more = {"a0", "a1", "a2", "a3", "odd", "a5", "a6", "a7"};
    const auto g = chain_with_odd_node(more, params, 4);
    const std::vector<Shape> s = declared_shapes(*g);
    const std::vector<size_t> steps = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      RecordingBackend backend(threads);
      std::vector<std::unique_ptr<Kernel>> kernels(more.size());
      backend.prepare_all(*g, steps, {}, s, kernels);
      for (const auto& k : kernels) CHECK(k != nullptr);
      REQUIRE(backend.events.size() == 2 * more.size());
      // a0 and odd begun and ended (either order on two threads), then the
      // six repeats.
      const std::set<std::string> first(backend.events.begin(), backend.events.begin() + 4);
      CHECK(first == std::set<std::string>{"begin a0", "end a0", "begin odd", "end odd"});
    }
  }
}

TEST_CASE("within a pass, the jobs that read more weight bytes are prepared first") {
  std::vector<float> params;
  const std::vector<std::string> names = {"n0", "n1", "n2", "n3", "n4", "n5"};
  const auto chain = layer_norm_chain(names, params);
  // n1 and n4 read a second pair of constants, declared 4 times larger in
  // the shapes the order is computed from: each its own kind (larger
  // shapes), and the costliest.
  std::vector<Value> values = chain->values();
  std::vector<Node> nodes = chain->nodes();
  const auto big = static_cast<uint32_t>(values.size());
  values.push_back(values[1]);
  values.push_back(values[2]);
  nodes[1].inputs = {nodes[0].output, big, big + 1};
  nodes[4].inputs = {nodes[3].output, big, big + 1};
  nodes[4].epsilon = 1e-5f;  // unlike n1
  const auto graph = Graph::from_parts(values, nodes, 0, chain->outputs());
  std::vector<Shape> shapes = declared_shapes(*graph);
  shapes[big] = shapes[big + 1] = {32};
  const std::vector<size_t> steps = {0, 1, 2, 3, 4, 5};
  PreparationOrder order = preparation_order(*graph, steps, {}, shapes);
  CHECK(order.first == std::vector<size_t>{1, 4, 0});
  CHECK(order.repeats == std::vector<size_t>{2, 3, 5});
  // A repeat of a costlier kind goes before cheaper repeats as well.
  std::vector<Fusion> fusions(2);
  fusions[0].nodes = {1, 2};
  fusions[1].nodes = {4, 5};
  nodes[4].epsilon = 1e-6f;  // now {4, 5} repeats {1, 2}
  const auto same = Graph::from_parts(values, nodes, 0, chain->outputs());
  order = preparation_order(*same, {0, 3}, fusions, shapes);
  CHECK(order.first == std::vector<size_t>{2, 0});
  CHECK(order.repeats == std::vector<size_t>{3, 1});
}

TEST_CASE("when nodes prepared at once fail, the error is the first failing node's in run order") {
  std::vector<float> params;
  const std::vector<std::string> names = {"norm0", "norm1", "bad2", "norm3", "bad4", "norm5"};
  const auto graph = layer_norm_chain(names, params);
  std::vector<Shape> shapes = declared_shapes(*graph);
  const std::vector<size_t> steps = {0, 1, 2, 3, 4, 5};
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    RecordingBackend backend(threads);
    std::vector<std::unique_ptr<Kernel>> kernels(names.size());
    CHECK_THROWS_WITH_AS(backend.prepare_all(*graph, steps, {}, shapes, kernels),
                         doctest::Contains("node 'bad2': refused"), Error);
  }
}

TEST_CASE("The GEMM rate probe reports the rate of the matmul it times") {
  // What a probe reports must be 2 n^3 over a time no longer than the call
  // to it took (a wrong flop count or unit shows as a longer implied time).
  const int n = 192;
  cpu::GemmRateProbe probe(1, n);
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const double gflops = probe.measure();
    const double call_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(std::isfinite(gflops));
    REQUIRE(gflops > 0.0);
    const double implied_s = 2.0 * n * n * n / (gflops * 1e9);
    CHECK(implied_s <= call_s);
    CHECK(implied_s > 0.2 * call_s);
  }
  const double best = cpu::gemm_gflops(1, n);
  CHECK(std::isfinite(best));
  CHECK(best > 0.0);
}
