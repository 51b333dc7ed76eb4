#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "ravlt/error.h"
#include "runtime/shape_inference.h"

namespace ravlt::runtime {
namespace {

constexpr size_t kAlignment = 64;

// Memory aligned to 64 bytes, freed with std::free.
struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;

AlignedBuffer allocate(size_t bytes) {
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  if (p == nullptr) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

}  // namespace

struct Executor::Plan {
  PlanStats stats;
  std::vector<Shape> shapes;                     // per value
  std::vector<std::unique_ptr<Kernel>> kernels;  // per node
  std::vector<std::vector<const float*>>
      inputs;                     // per node, resolved pointers (input slot patched)
  std::vector<float*> outputs;    // per node
  std::vector<uint8_t*> scratch;  // per node
  std::vector<std::pair<size_t, size_t>> graph_input_uses;  // (node, slot) reading the graph input
  AlignedBuffer arena;
  AlignedBuffer output;
};

Executor::Executor(std::shared_ptr<const Graph> graph, std::unique_ptr<Backend> backend,
                   int threads, size_t max_plan_bytes)
    : graph_(std::move(graph)),
      backend_(std::move(backend)),
      threads_(threads),
      max_plan_bytes_(max_plan_bytes) {}

Executor::~Executor() = default;

const PlanStats& Executor::plan(std::span<const int64_t> input_shape) {
  return plan_for(input_shape).stats;
}

Executor::Plan& Executor::plan_for(std::span<const int64_t> shape) {
  if (last_shape_ != nullptr &&
      std::equal(shape.begin(), shape.end(), last_shape_->begin(), last_shape_->end())) {
    return *last_plan_;
  }
  const Shape input_shape(shape.begin(), shape.end());
  auto it = plans_.find(input_shape);
  if (it != plans_.end()) {
    last_shape_ = &it->first;
    last_plan_ = it->second.get();
    return *it->second;
  }

  const Graph& g = *graph_;
  const std::vector<Shape> shapes = infer_shapes(g, input_shape);
  auto plan = std::make_unique<Plan>();
  const auto& nodes = g.nodes();
  const auto& values = g.values();

  // Lifetimes: a value lives from the step that writes it to its last reader.
  std::vector<int> first(values.size(), -1), last(values.size(), -1);
  for (size_t k = 0; k < nodes.size(); ++k) {
    first[nodes[k].output] = static_cast<int>(k);
    last[nodes[k].output] = std::max(last[nodes[k].output], static_cast<int>(k));
    for (uint32_t in : nodes[k].inputs) last[in] = static_cast<int>(k);
  }
  std::vector<BufferRequest> requests;
  std::vector<int> value_request(values.size(), -1), scratch_request(nodes.size(), -1);
  for (size_t k = 0; k < nodes.size(); ++k) {
    plan->kernels.push_back(backend_->prepare(g, nodes[k], shapes));
    const uint32_t out = nodes[k].output;
    if (out != g.output()) {
      value_request[out] = static_cast<int>(requests.size());
      requests.push_back(
          {static_cast<size_t>(element_count(shapes[out])) * sizeof(float), first[out], last[out]});
    }
    if (const size_t s = plan->kernels.back()->scratch_bytes(); s > 0) {
      scratch_request[k] = static_cast<int>(requests.size());
      requests.push_back({s, static_cast<int>(k), static_cast<int>(k)});
    }
  }
  const MemoryPlan memory = plan_memory(requests, kAlignment);
  const size_t output_bytes =
      static_cast<size_t>(element_count(shapes[g.output()])) * sizeof(float);
  if (max_plan_bytes_ > 0 && memory.arena_bytes + output_bytes > max_plan_bytes_) {
    auto mb = [](size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MB"; };
    throw Error("input shape " + to_string(input_shape) + " needs " +
                mb(memory.arena_bytes + output_bytes) + " of activations, more than the limit of " +
                mb(max_plan_bytes_));
  }
  plan->arena = allocate(memory.arena_bytes);
  plan->output = allocate(output_bytes);
  plan->stats = {memory.arena_bytes, memory.lower_bound, shapes[g.output()]};
  plan->shapes = shapes;

  auto address = [&](uint32_t v) -> float* {
    if (v == g.output()) return reinterpret_cast<float*>(plan->output.get());
    return reinterpret_cast<float*>(plan->arena.get() +
                                    memory.offsets[static_cast<size_t>(value_request[v])]);
  };
  for (size_t k = 0; k < nodes.size(); ++k) {
    std::vector<const float*> in;
    for (size_t slot = 0; slot < nodes[k].inputs.size(); ++slot) {
      const uint32_t v = nodes[k].inputs[slot];
      if (values[v].constant) {
        in.push_back(values[v].data);
      } else if (v == g.input()) {
        in.push_back(nullptr);  // patched per run
        plan->graph_input_uses.emplace_back(k, slot);
      } else {
        in.push_back(address(v));
      }
    }
    plan->inputs.push_back(std::move(in));
    plan->outputs.push_back(address(nodes[k].output));
    plan->scratch.push_back(scratch_request[k] < 0
                                ? nullptr
                                : plan->arena.get() +
                                      memory.offsets[static_cast<size_t>(scratch_request[k])]);
  }
  it = plans_.emplace(input_shape, std::move(plan)).first;
  last_shape_ = &it->first;
  last_plan_ = it->second.get();
  return *last_plan_;
}

const float* Executor::run(const float* input, std::span<const int64_t> input_shape) {
  Plan& p = plan_for(input_shape);
  for (const auto& [node, slot] : p.graph_input_uses) p.inputs[node][slot] = input;
  backend_->begin_run(threads_);
  if (!profiling_) {
    for (size_t k = 0; k < p.kernels.size(); ++k) {
      p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
    }
  } else {
    node_seconds_.resize(p.kernels.size(), 0.0);
    for (size_t k = 0; k < p.kernels.size(); ++k) {
      const auto start = std::chrono::steady_clock::now();
      p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
      node_seconds_[k] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  return reinterpret_cast<const float*>(p.output.get());
}

const float* Executor::run_observed(const float* input, std::span<const int64_t> input_shape,
                                    const NodeObserver& observer) {
  Plan& p = plan_for(input_shape);
  for (const auto& [node, slot] : p.graph_input_uses) p.inputs[node][slot] = input;
  backend_->begin_run(threads_);
  const auto& nodes = graph_->nodes();
  for (size_t k = 0; k < p.kernels.size(); ++k) {
    p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
    observer(k, p.outputs[k], p.shapes[nodes[k].output]);
  }
  return reinterpret_cast<const float*>(p.output.get());
}

}  // namespace ravlt::runtime
