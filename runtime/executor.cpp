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
  std::vector<size_t> steps;                     // the nodes that run, in graph order
  std::vector<std::unique_ptr<Kernel>> kernels;  // per node; null for nodes that do not run
  // Per step: the values its kernel reads (a node's inputs, or a fusion's).
  std::vector<std::vector<uint32_t>> step_inputs;
  std::vector<std::vector<ConstView>> inputs;  // per node, resolved (input slot patched)
  std::vector<View> outputs;                   // per node
  std::vector<uint8_t*> scratch;               // per node
  std::vector<std::pair<size_t, size_t>> graph_input_uses;  // (node, slot) reading the graph input
  std::unique_ptr<BackendMemory> arena;                     // every intermediate and scratch
  // The requested outputs, each at its offset, in backend memory.
  std::unique_ptr<BackendMemory> output_memory;
  std::vector<View> requested;  // per requested output
  std::vector<size_t> counts;   // elements per requested output
  // The input's copy in backend memory (device backends, or a host backend
  // whose activations are not float32), and the outputs as float32 on the
  // host where the backend's are not that already.
  std::unique_ptr<BackendMemory> staged_input;
  std::unique_ptr<BackendMemory> host_output;
  std::vector<const float*> results;  // per requested output: what run() hands out
  std::vector<float*> host_results;   // the same, where outputs are staged on the host
  size_t input_count = 0;
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

const PlanStats& Executor::plan(std::span<const int64_t> input_shape,
                                std::span<const uint32_t> outputs) {
  return plan_for(input_shape, outputs).stats;
}

Executor::Plan& Executor::plan_for(std::span<const int64_t> shape,
                                   std::span<const uint32_t> outputs, bool fused) {
  if (outputs.empty()) outputs = graph_->outputs();
  if (last_key_ != nullptr && last_key_->fused == fused &&
      std::equal(shape.begin(), shape.end(), last_key_->shape.begin(), last_key_->shape.end()) &&
      std::equal(outputs.begin(), outputs.end(), last_key_->outputs.begin(),
                 last_key_->outputs.end())) {
    last_plan_->last_use = ++uses_;
    return *last_plan_;
  }
  PlanKey key{Shape(shape.begin(), shape.end()),
              std::vector<uint32_t>(outputs.begin(), outputs.end()), fused};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    std::unique_ptr<Plan> plan = make_plan(key);
    it = plans_.emplace(std::move(key), std::move(plan)).first;
  }
  last_key_ = &it->first;
  last_plan_ = it->second.get();
  last_plan_->last_use = ++uses_;
  return *last_plan_;
}

void Executor::evict_least_recent() {
  auto oldest = plans_.begin();
  for (auto p = plans_.begin(); p != plans_.end(); ++p) {
    if (p->second->last_use < oldest->second->last_use) oldest = p;
  }
  if (oldest->second.get() == last_plan_) {
    last_key_ = nullptr;
    last_plan_ = nullptr;
  }
  plans_.erase(oldest);
}

std::unique_ptr<Executor::Plan> Executor::make_plan(const PlanKey& key) {
  const Shape& input_shape = key.shape;
  const std::vector<uint32_t>& outputs = key.outputs;
  const Graph& g = *graph_;
  const auto& nodes = g.nodes();
  const auto& values = g.values();
  // The requested outputs: each computed by a node, each asked once.
  std::vector<int> output_slot(values.size(), -1);
  for (size_t i = 0; i < outputs.size(); ++i) {
    const uint32_t v = outputs[i];
    if (v >= values.size() || g.producer(v) < 0) {
      throw Error("value " + std::to_string(v) + " is not computed by the graph");
    }
    if (output_slot[v] >= 0) throw Error("output '" + values[v].name + "' is requested twice");
    output_slot[v] = static_cast<int>(i);
  }
  // The nodes those outputs need, walking back from them.
  std::vector<bool> needed_value(values.size(), false), runs(nodes.size(), false);
  for (uint32_t v : outputs) needed_value[v] = true;
  for (size_t k = nodes.size(); k-- > 0;) {
    if (!needed_value[nodes[k].output]) continue;
    runs[k] = true;
    for (uint32_t in : nodes[k].inputs) needed_value[in] = true;
  }

  const std::vector<Shape> shapes = infer_shapes(g, input_shape);
  auto plan = std::make_unique<Plan>();
  plan->shapes = shapes;
  const bool on_host = backend_->uses_host_memory();
  for (size_t k = 0; k < nodes.size(); ++k) {
    if (runs[k]) plan->steps.push_back(k);
  }
  plan->step_inputs.resize(nodes.size());
  for (size_t k : plan->steps) plan->step_inputs[k] = nodes[k].inputs;
  const std::vector<Fusion> fusions =
      key.fused ? fuse_steps(*plan, outputs) : std::vector<Fusion>{};
  std::vector<size_t> unfused;  // the steps that are single nodes
  for (size_t k : plan->steps) {
    const bool in_fusion = std::any_of(fusions.begin(), fusions.end(), [k](const Fusion& f) {
      return std::find(f.nodes.begin(), f.nodes.end(), k) != f.nodes.end();
    });
    if (!in_fusion) unfused.push_back(k);
  }

  // Lifetimes: a value lives from the step that writes it to its last reader.
  std::vector<int> first(values.size(), -1), last(values.size(), -1);
  for (size_t k : plan->steps) {
    first[nodes[k].output] = static_cast<int>(k);
    last[nodes[k].output] = std::max(last[nodes[k].output], static_cast<int>(k));
    for (uint32_t in : plan->step_inputs[k]) last[in] = static_cast<int>(k);
  }
  size_t scratch_bytes = 0;
  plan->kernels.resize(nodes.size());
  backend_->prepare_all(g, unfused, fusions, shapes, plan->kernels);
  for (size_t k : plan->steps) {
    scratch_bytes = std::max(scratch_bytes, plan->kernels[k]->scratch_bytes());
  }
  // Every value's type: constants as the backend keeps them (known once
  // every kernel is prepared), the rest as the backend says.
  plan->dtypes.resize(values.size());
  for (uint32_t v = 0; v < values.size(); ++v) {
    plan->dtypes[v] =
        values[v].constant ? backend_->constant_dtype(v) : backend_->value_dtype(g, v);
  }
  const DType input_dtype = plan->dtypes[g.input()];
  // Every intermediate and every kernel's scratch placed in one arena, each
  // live over its steps. The activations are also planned alone, to report
  // what they need apart from the (float32) scratch.
  std::vector<BufferRequest> requests;
  std::vector<int> value_request(values.size(), -1), scratch_request(nodes.size(), -1);
  for (size_t k : plan->steps) {
    const uint32_t out = nodes[k].output;
    if (output_slot[out] < 0) {
      value_request[out] = static_cast<int>(requests.size());
      requests.push_back({bytes_of(shapes[out], plan->dtypes[out]), first[out], last[out]});
    }
  }
  const MemoryPlan activations_alone = plan_memory(requests, kAlignment);
  for (size_t k : plan->steps) {
    if (const size_t bytes = plan->kernels[k]->scratch_bytes(); bytes > 0) {
      scratch_request[k] = static_cast<int>(requests.size());
      requests.push_back({bytes, static_cast<int>(k), static_cast<int>(k)});
    }
  }
  const MemoryPlan memory = plan_memory(requests, kAlignment);
  // The requested outputs side by side, alive for the whole run.
  std::vector<size_t> output_offsets;
  size_t output_bytes = 0, host_output_bytes = 0;
  bool stage_output = !on_host;
  for (uint32_t v : outputs) {
    output_offsets.push_back(output_bytes);
    output_bytes +=
        (bytes_of(shapes[v], plan->dtypes[v]) + kAlignment - 1) / kAlignment * kAlignment;
    host_output_bytes += static_cast<size_t>(element_count(shapes[v])) * sizeof(float);
    stage_output = stage_output || plan->dtypes[v] != DType::kFloat32;
  }
  plan->input_count = static_cast<size_t>(element_count(input_shape));
  const bool stage_input = !on_host || input_dtype != DType::kFloat32;
  const size_t input_bytes = stage_input ? bytes_of(input_shape, input_dtype) : 0;
  const size_t total = memory.arena_bytes + output_bytes + input_bytes;
  if (max_plan_bytes_ > 0 && total > max_plan_bytes_) {
    auto mb = [](size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MB"; };
    throw Error("input shape " + to_string(input_shape) + " needs " + mb(total) +
                " of activations, more than the limit of " + mb(max_plan_bytes_));
  }
  // The plan is accepted: make room before allocating, freeing the least
  // recently used plan (a refused shape evicts nothing).
  if (plans_.size() >= max_plans_) evict_least_recent();
  plan->arena = backend_->allocate(memory.arena_bytes);
  plan->output_memory = backend_->allocate(output_bytes);
  if (stage_input) plan->staged_input = backend_->allocate(input_bytes);
  if (stage_output) plan->host_output = allocate_host(host_output_bytes);
  plan->stats = {memory.arena_bytes, memory.lower_bound, activations_alone.arena_bytes,
                 scratch_bytes,      output_bytes,       {}};
  size_t host_offset = 0;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const uint32_t v = outputs[i];
    plan->stats.output_shapes.push_back(shapes[v]);
    plan->requested.push_back({plan->output_memory->data() + output_offsets[i], plan->dtypes[v]});
    plan->counts.push_back(static_cast<size_t>(element_count(shapes[v])));
    if (stage_output) {
      plan->host_results.push_back(
          reinterpret_cast<float*>(plan->host_output->data() + host_offset));
      plan->results.push_back(plan->host_results.back());
      host_offset += plan->counts.back() * sizeof(float);
    } else {
      plan->results.push_back(plan->requested.back().f32());
    }
  }

  auto address = [&](uint32_t v) -> void* {
    if (output_slot[v] >= 0) return plan->requested[static_cast<size_t>(output_slot[v])].data;
    return plan->arena->data() + memory.offsets[static_cast<size_t>(value_request[v])];
  };
  plan->inputs.resize(nodes.size());
  plan->outputs.resize(nodes.size());
  plan->scratch.resize(nodes.size(), nullptr);
  for (size_t k : plan->steps) {
    std::vector<ConstView> in;
    for (size_t slot = 0; slot < plan->step_inputs[k].size(); ++slot) {
      const uint32_t v = plan->step_inputs[k][slot];
      if (values[v].constant) {
        in.push_back({backend_->constant(g, v), plan->dtypes[v]});
      } else if (v == g.input()) {
        // A host backend reads the caller's float32 input in place (patched
        // per run); otherwise the kernels read its staged copy.
        if (stage_input) {
          in.push_back({plan->staged_input->data(), input_dtype});
        } else {
          in.push_back({nullptr, DType::kFloat32});
          plan->graph_input_uses.emplace_back(k, slot);
        }
      } else {
        in.push_back({address(v), plan->dtypes[v]});
      }
    }
    plan->inputs[k] = std::move(in);
    plan->outputs[k] = {address(nodes[k].output), plan->dtypes[nodes[k].output]};
    if (scratch_request[k] >= 0) {
      plan->scratch[k] =
          plan->arena->data() + memory.offsets[static_cast<size_t>(scratch_request[k])];
    }
  }
  return plan;
}

std::vector<Fusion> Executor::fuse_steps(Plan& plan, const std::vector<uint32_t>& outputs) {
  const Graph& g = *graph_;
  const auto& nodes = g.nodes();
  std::vector<int> readers(g.values().size(), 0);
  for (size_t k : plan.steps) {
    for (uint32_t in : nodes[k].inputs) ++readers[in];
  }
  for (uint32_t v : outputs) ++readers[v];
  std::vector<Fusion> fusions = backend_->fuse(g, plan.steps, plan.shapes, readers);
  // What the executor relies on, checked: a backend that breaks it is a bug.
  for (const Fusion& f : fusions) {
    const auto at = std::find(plan.steps.begin(), plan.steps.end(), f.nodes.front());
    bool ok = f.nodes.size() >= 2 && at != plan.steps.end() &&
              static_cast<size_t>(plan.steps.end() - at) >= f.nodes.size();
    for (size_t i = 0; ok && i < f.nodes.size(); ++i) {
      ok = at[static_cast<std::ptrdiff_t>(i)] == f.nodes[i] &&
           plan.step_inputs[f.nodes[i]] == nodes[f.nodes[i]].inputs;
      if (ok && i + 1 < f.nodes.size()) {
        const uint32_t passed = nodes[f.nodes[i]].output;
        const std::vector<uint32_t>& next = nodes[f.nodes[i + 1]].inputs;
        ok = readers[passed] == 1 && std::count(next.begin(), next.end(), passed) == 1 &&
             std::count(f.inputs.begin(), f.inputs.end(), passed) == 0;
      }
    }
    if (!ok) throw Error("the backend proposed a fusion ('" + f.kind + "') the plan cannot run");
    plan.step_inputs[f.nodes.back()] = f.inputs;
    for (size_t i = 0; i + 1 < f.nodes.size(); ++i) plan.step_inputs[f.nodes[i]].clear();
    fused_kind_.resize(nodes.size());
    for (size_t n : f.nodes) fused_kind_[n] = f.kind;
  }
  // The chains run as their last node.
  std::erase_if(plan.steps, [&](size_t k) {
    return std::any_of(fusions.begin(), fusions.end(), [k](const Fusion& f) {
      return k != f.nodes.back() && std::find(f.nodes.begin(), f.nodes.end(), k) != f.nodes.end();
    });
  });
  return fusions;
}

void Executor::start_run(Plan& p, const float* input) {
  backend_->begin_run(threads_);
  if (p.staged_input) {
    backend_->copy_in(p.staged_input->data(), p.dtypes[graph_->input()], input, p.input_count);
  } else {
    for (const auto& [node, slot] : p.graph_input_uses) p.inputs[node][slot].data = input;
  }
}

void Executor::finish_run(Plan& p) {
  if (p.host_output) {
    for (size_t i = 0; i < p.requested.size(); ++i) {
      backend_->copy_out(p.host_results[i], p.requested[i].data, p.requested[i].dtype, p.counts[i]);
    }
  }
  backend_->finish_run();
}

std::span<const float* const> Executor::run(const float* input,
                                            std::span<const int64_t> input_shape,
                                            std::span<const uint32_t> outputs) {
  Plan& p = plan_for(input_shape, outputs);
  start_run(p, input);
  if (!profiling_) {
    backend_->execute(p.backend_state, [&p] {
      for (size_t k : p.steps) p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
    });
  } else {
    node_seconds_.resize(graph_->nodes().size(), 0.0);
    for (size_t k : p.steps) {
      const auto start = std::chrono::steady_clock::now();
      p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
      backend_->finish_run();  // a device's kernels are only enqueued
      node_seconds_[k] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  finish_run(p);
  return p.results;
}

void Executor::run_observed(const float* input, std::span<const int64_t> input_shape,
                            const NodeObserver& observer) {
  Plan& p = plan_for(input_shape, {}, false);
  start_run(p, input);
  const auto& nodes = graph_->nodes();
  const bool direct = backend_->uses_host_memory();
  std::vector<float> host_copy;
  for (size_t k : p.steps) {
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
  finish_run(p);
}

}  // namespace ravlt::runtime
