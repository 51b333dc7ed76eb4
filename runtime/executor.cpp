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

size_t bytes_of(const Shape& shape, DType dtype) {
  return static_cast<size_t>(element_count(shape)) * dtype_size(dtype);
}

}  // namespace

struct Executor::Plan {
  PlanStats stats;
  std::vector<Shape> shapes;                     // per value
  std::vector<DType> dtypes;                     // per value, in the backend's memory
  std::vector<std::unique_ptr<Kernel>> kernels;  // per node
  std::vector<std::vector<ConstView>> inputs;    // per node, resolved (input slot patched)
  std::vector<View> outputs;                     // per node
  std::vector<uint8_t*> scratch;                 // per node
  std::vector<std::pair<size_t, size_t>> graph_input_uses;  // (node, slot) reading the graph input
  std::unique_ptr<BackendMemory> arena;                     // every intermediate and scratch
  std::unique_ptr<BackendMemory> output;  // where the last node writes (backend memory)
  // The input's copy in backend memory (device backends, or a host backend
  // whose activations are not float32), and the output as float32 on the
  // host where the backend's is not that already.
  std::unique_ptr<BackendMemory> staged_input;
  std::unique_ptr<BackendMemory> host_output;
  size_t input_count = 0, output_count = 0;
  std::unique_ptr<PlanState> backend_state;  // e.g. the recorded CUDA graph
  uint64_t last_use = 0;                     // Executor::uses_ when last used
};

Executor::Executor(std::shared_ptr<const Graph> graph, std::unique_ptr<Backend> backend,
                   int threads, size_t max_plan_bytes, size_t max_plans)
    : graph_(std::move(graph)),
      backend_(std::move(backend)),
      threads_(threads),
      max_plan_bytes_(max_plan_bytes),
      max_plans_(std::max<size_t>(1, max_plans)) {}

Executor::~Executor() = default;

const PlanStats& Executor::plan(std::span<const int64_t> input_shape) {
  return plan_for(input_shape).stats;
}

Executor::Plan& Executor::plan_for(std::span<const int64_t> shape) {
  if (last_shape_ != nullptr &&
      std::equal(shape.begin(), shape.end(), last_shape_->begin(), last_shape_->end())) {
    last_plan_->last_use = ++uses_;
    return *last_plan_;
  }
  const Shape input_shape(shape.begin(), shape.end());
  auto it = plans_.find(input_shape);
  if (it != plans_.end()) {
    last_shape_ = &it->first;
    last_plan_ = it->second.get();
    last_plan_->last_use = ++uses_;
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
  size_t scratch_bytes = 0;
  for (size_t k = 0; k < nodes.size(); ++k) {
    plan->kernels.push_back(backend_->prepare(g, nodes[k], shapes));
    scratch_bytes = std::max(scratch_bytes, plan->kernels.back()->scratch_bytes());
  }
  // Every value's type: constants as the backend keeps them (known once
  // every kernel is prepared), activations in the backend's type.
  plan->dtypes.resize(values.size(), backend_->activation_dtype());
  for (uint32_t v = 0; v < values.size(); ++v) {
    if (values[v].constant) plan->dtypes[v] = backend_->constant_dtype(v);
  }
  const DType act = backend_->activation_dtype();
  // Every intermediate and every kernel's scratch placed in one arena, each
  // live over its steps. The activations are also planned alone, to report
  // what they need apart from the (float32) scratch.
  std::vector<BufferRequest> requests;
  std::vector<int> value_request(values.size(), -1), scratch_request(nodes.size(), -1);
  for (size_t k = 0; k < nodes.size(); ++k) {
    const uint32_t out = nodes[k].output;
    if (out != g.output()) {
      value_request[out] = static_cast<int>(requests.size());
      requests.push_back({bytes_of(shapes[out], plan->dtypes[out]), first[out], last[out]});
    }
  }
  const MemoryPlan activations_alone = plan_memory(requests, kAlignment);
  for (size_t k = 0; k < nodes.size(); ++k) {
    if (const size_t bytes = plan->kernels[k]->scratch_bytes(); bytes > 0) {
      scratch_request[k] = static_cast<int>(requests.size());
      requests.push_back({bytes, static_cast<int>(k), static_cast<int>(k)});
    }
  }
  const MemoryPlan memory = plan_memory(requests, kAlignment);
  plan->output_count = static_cast<size_t>(element_count(shapes[g.output()]));
  plan->input_count = static_cast<size_t>(element_count(input_shape));
  const bool stage_input = !on_host || act != DType::kFloat32;
  const bool stage_output = !on_host || plan->dtypes[g.output()] != DType::kFloat32;
  const size_t output_bytes = bytes_of(shapes[g.output()], plan->dtypes[g.output()]);
  const size_t input_bytes = stage_input ? bytes_of(input_shape, act) : 0;
  const size_t total = memory.arena_bytes + output_bytes + input_bytes;
  if (max_plan_bytes_ > 0 && total > max_plan_bytes_) {
    auto mb = [](size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MB"; };
    throw Error("input shape " + to_string(input_shape) + " needs " + mb(total) +
                " of activations, more than the limit of " + mb(max_plan_bytes_));
  }
  // The shape is accepted: make room, freeing the least recently used plan
  // (a refused shape evicts nothing).
  if (plans_.size() >= max_plans_) {
    auto oldest = plans_.begin();
    for (auto p = plans_.begin(); p != plans_.end(); ++p) {
      if (p->second->last_use < oldest->second->last_use) oldest = p;
    }
    if (oldest->second.get() == last_plan_) {
      last_shape_ = nullptr;
      last_plan_ = nullptr;
    }
    plans_.erase(oldest);
  }
  plan->arena = backend_->allocate(memory.arena_bytes);
  plan->output = backend_->allocate(output_bytes);
  if (stage_input) plan->staged_input = backend_->allocate(input_bytes);
  if (stage_output) plan->host_output = allocate_host(plan->output_count * sizeof(float));
  plan->stats = {memory.arena_bytes, memory.lower_bound, activations_alone.arena_bytes,
                 scratch_bytes, shapes[g.output()]};
  plan->shapes = shapes;

  auto address = [&](uint32_t v) -> void* {
    if (v == g.output()) return plan->output->data();
    return plan->arena->data() + memory.offsets[static_cast<size_t>(value_request[v])];
  };
  for (size_t k = 0; k < nodes.size(); ++k) {
    std::vector<ConstView> in;
    for (size_t slot = 0; slot < nodes[k].inputs.size(); ++slot) {
      const uint32_t v = nodes[k].inputs[slot];
      if (values[v].constant) {
        in.push_back({backend_->constant(g, v), plan->dtypes[v]});
      } else if (v == g.input()) {
        // A host backend reads the caller's float32 input in place (patched
        // per run); otherwise the kernels read its staged copy.
        if (stage_input) {
          in.push_back({plan->staged_input->data(), act});
        } else {
          in.push_back({nullptr, DType::kFloat32});
          plan->graph_input_uses.emplace_back(k, slot);
        }
      } else {
        in.push_back({address(v), plan->dtypes[v]});
      }
    }
    plan->inputs.push_back(std::move(in));
    plan->outputs.push_back({address(nodes[k].output), plan->dtypes[nodes[k].output]});
    plan->scratch.push_back(scratch_request[k] < 0
                                ? nullptr
                                : plan->arena->data() +
                                      memory.offsets[static_cast<size_t>(scratch_request[k])]);
  }
  plan->last_use = ++uses_;
  it = plans_.emplace(input_shape, std::move(plan)).first;
  last_shape_ = &it->first;
  last_plan_ = it->second.get();
  return *last_plan_;
}

void Executor::start_run(Plan& p, const float* input) {
  backend_->begin_run(threads_);
  if (p.staged_input) {
    backend_->copy_in(p.staged_input->data(), backend_->activation_dtype(), input, p.input_count);
  } else {
    for (const auto& [node, slot] : p.graph_input_uses) p.inputs[node][slot].data = input;
  }
}

const float* Executor::finish_run(Plan& p) {
  if (!p.host_output) {
    backend_->finish_run();
    return reinterpret_cast<const float*>(p.output->data());
  }
  backend_->copy_out(reinterpret_cast<float*>(p.host_output->data()), p.output->data(),
                     p.outputs.back().dtype, p.output_count);
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
  const bool direct = backend_->uses_host_memory();
  std::vector<float> host_copy;
  for (size_t k = 0; k < p.kernels.size(); ++k) {
    p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
    const Shape& shape = p.shapes[nodes[k].output];
    if (direct && p.outputs[k].dtype == DType::kFloat32) {
      observer(k, p.outputs[k].f32(), shape);
    } else {
      host_copy.resize(static_cast<size_t>(element_count(shape)));
      backend_->copy_out(host_copy.data(), p.outputs[k].data, p.outputs[k].dtype, host_copy.size());
      backend_->finish_run();
      observer(k, host_copy.data(), shape);
    }
  }
  return finish_run(p);
}

}  // namespace ravlt::runtime
