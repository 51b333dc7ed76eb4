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

size_t float_bytes(const Shape& shape) {
  return static_cast<size_t>(element_count(shape)) * sizeof(float);
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
  std::unique_ptr<BackendMemory> arena;
  std::unique_ptr<BackendMemory> output;  // where the last node writes (backend memory)
  // Device backends only: the input's copy, and the output copied back.
  std::unique_ptr<BackendMemory> device_input;
  std::unique_ptr<BackendMemory> host_output;
  size_t input_bytes = 0, output_bytes = 0;
  std::unique_ptr<PlanState> backend_state;  // e.g. the recorded CUDA graph
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
  const bool on_host = backend_->uses_host_memory();

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
      requests.push_back({float_bytes(shapes[out]), first[out], last[out]});
    }
    if (const size_t s = plan->kernels.back()->scratch_bytes(); s > 0) {
      scratch_request[k] = static_cast<int>(requests.size());
      requests.push_back({s, static_cast<int>(k), static_cast<int>(k)});
    }
  }
  const MemoryPlan memory = plan_memory(requests, kAlignment);
  plan->output_bytes = float_bytes(shapes[g.output()]);
  plan->input_bytes = float_bytes(input_shape);
  const size_t total = memory.arena_bytes + plan->output_bytes + (on_host ? 0 : plan->input_bytes);
  if (max_plan_bytes_ > 0 && total > max_plan_bytes_) {
    auto mb = [](size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MB"; };
    throw Error("input shape " + to_string(input_shape) + " needs " + mb(total) +
                " of activations, more than the limit of " + mb(max_plan_bytes_));
  }
  plan->arena = backend_->allocate(memory.arena_bytes);
  plan->output = backend_->allocate(plan->output_bytes);
  if (!on_host) {
    plan->device_input = backend_->allocate(plan->input_bytes);
    plan->host_output = allocate_host(plan->output_bytes);
  }
  plan->stats = {memory.arena_bytes, memory.lower_bound, shapes[g.output()]};
  plan->shapes = shapes;

  auto address = [&](uint32_t v) -> float* {
    if (v == g.output()) return reinterpret_cast<float*>(plan->output->data());
    return reinterpret_cast<float*>(plan->arena->data() +
                                    memory.offsets[static_cast<size_t>(value_request[v])]);
  };
  for (size_t k = 0; k < nodes.size(); ++k) {
    std::vector<const float*> in;
    for (size_t slot = 0; slot < nodes[k].inputs.size(); ++slot) {
      const uint32_t v = nodes[k].inputs[slot];
      if (values[v].constant) {
        in.push_back(backend_->constant(g, v));
      } else if (v == g.input()) {
        // A host backend reads the caller's input in place (patched per
        // run); a device backend its own copy, at a fixed address.
        in.push_back(on_host ? nullptr
                             : reinterpret_cast<const float*>(plan->device_input->data()));
        if (on_host) plan->graph_input_uses.emplace_back(k, slot);
      } else {
        in.push_back(address(v));
      }
    }
    plan->inputs.push_back(std::move(in));
    plan->outputs.push_back(address(nodes[k].output));
    plan->scratch.push_back(scratch_request[k] < 0
                                ? nullptr
                                : plan->arena->data() +
                                      memory.offsets[static_cast<size_t>(scratch_request[k])]);
  }
  it = plans_.emplace(input_shape, std::move(plan)).first;
  last_shape_ = &it->first;
  last_plan_ = it->second.get();
  return *last_plan_;
}

void Executor::start_run(Plan& p, const float* input) {
  backend_->begin_run(threads_);
  if (backend_->uses_host_memory()) {
    for (const auto& [node, slot] : p.graph_input_uses) p.inputs[node][slot] = input;
  } else {
    backend_->copy_in(p.device_input->data(), input, p.input_bytes);
  }
}

const float* Executor::finish_run(Plan& p) {
  if (backend_->uses_host_memory()) {
    backend_->finish_run();
    return reinterpret_cast<const float*>(p.output->data());
  }
  backend_->copy_out(p.host_output->data(), p.output->data(), p.output_bytes);
  backend_->finish_run();
  return reinterpret_cast<const float*>(p.host_output->data());
}

const float* Executor::run(const float* input, std::span<const int64_t> input_shape) {
  Plan& p = plan_for(input_shape);
  start_run(p, input);
  if (!profiling_) {
    backend_->execute(p.backend_state, [&p] {
      for (size_t k = 0; k < p.kernels.size(); ++k) {
        p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
      }
    });
  } else {
    node_seconds_.resize(p.kernels.size(), 0.0);
    for (size_t k = 0; k < p.kernels.size(); ++k) {
      const auto start = std::chrono::steady_clock::now();
      p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
      backend_->finish_run();  // a device's kernels are only enqueued
      node_seconds_[k] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  return finish_run(p);
}

const float* Executor::run_observed(const float* input, std::span<const int64_t> input_shape,
                                    const NodeObserver& observer) {
  Plan& p = plan_for(input_shape);
  start_run(p, input);
  const auto& nodes = graph_->nodes();
  const bool on_host = backend_->uses_host_memory();
  std::vector<float> host_copy;
  for (size_t k = 0; k < p.kernels.size(); ++k) {
    p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
    const Shape& shape = p.shapes[nodes[k].output];
    if (on_host) {
      observer(k, p.outputs[k], shape);
    } else {
      host_copy.resize(static_cast<size_t>(element_count(shape)));
      backend_->copy_out(host_copy.data(), p.outputs[k], host_copy.size() * sizeof(float));
      backend_->finish_run();
      observer(k, host_copy.data(), shape);
    }
  }
  return finish_run(p);
}

}  // namespace ravlt::runtime
