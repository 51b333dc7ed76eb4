#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <thread>

#include "ravlt/error.h"
#include "runtime/shape_inference.h"

namespace ravlt::runtime {
namespace {

constexpr size_t kAlignment = 64;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

size_t bytes_of(const Shape& shape, DType dtype) {
  return static_cast<size_t>(element_count(shape)) * dtype_size(dtype);
}

// Where a batched run goes image by image up to: the position in `steps`
// of the first step at or after the last one whose output (the whole
// batch, in the backend's type) exceeds `limit` bytes, such that no later step reads
// anything written before it or the graph's input (its own output is what
// they read). -1: no such step, a batch of one, or a requested output
// (`output_slot`) before it.
int image_by_image_until(const Graph& g, const Backend& backend, const std::vector<size_t>& steps,
                         const std::vector<Shape>& shapes, const std::vector<int>& output_slot) {
  const size_t limit = backend.image_by_image_bytes();
  if (limit == 0 || shapes[g.input()].empty() || shapes[g.input()][0] < 2) return -1;
  const auto& nodes = g.nodes();
  const int count = static_cast<int>(steps.size());
  int last_large = -1;
  std::vector<int> last_read(g.values().size(), -1);
  for (int i = 0; i < count; ++i) {
    const Node& node = nodes[steps[static_cast<size_t>(i)]];
    if (bytes_of(shapes[node.output], backend.value_dtype(g, node.output)) > limit) last_large = i;
    for (uint32_t in : node.inputs) last_read[in] = i;
  }
  if (last_large < 0) return -1;
  int reach = last_read[g.input()];  // the last step reading anything written so far
  for (int i = 0; i + 1 < count; ++i) {
    const uint32_t v = nodes[steps[static_cast<size_t>(i)]].output;
    if (output_slot[v] >= 0) return -1;
    if (i >= last_large && reach <= i) return i;
    reach = std::max(reach, last_read[v]);
  }
  return -1;
}

}  // namespace

struct Executor::Plan {
  PlanStats stats;
  // Image by image (see executor.h): the plan of the first nodes for one
  // image, the node of theirs whose output the rest reads, where that
  // output lies for the whole batch (in this plan's arena) and the bytes
  // of one image's share. Its arena is a block of this plan's.
  std::unique_ptr<Plan> per_image;
  size_t per_image_last = 0;
  uint8_t* boundary = nullptr;
  size_t boundary_image_bytes = 0;
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
  const float* input = nullptr;              // the caller's, for this run (start_run)
  std::unique_ptr<PlanState> backend_state;  // e.g. the recorded CUDA graph
  uint64_t last_use = 0;                     // Executor::uses_ when last used
  // Whose kernels read weights in place until packed after the first run.
  bool weights_deferred = false;
  std::vector<std::pair<size_t, std::string>> fused_kinds;  // (node, kind) of its fusions
};

// The packing after a first run, on a thread of its own: the keys of the
// plans it makes again and, once the thread has ended, those plans.
struct Executor::Repack {
  std::vector<PlanKey> keys;
  std::vector<std::unique_ptr<Plan>> plans;
  std::exception_ptr error;
  std::atomic<bool> cancel{false};
  double seconds = 0.0;
  std::thread thread;
};

Executor::Executor(std::shared_ptr<const Graph> graph, std::unique_ptr<Backend> backend,
                   int threads, size_t max_plan_bytes, size_t max_plans)
    : graph_(std::move(graph)),
      backend_(std::move(backend)),
      threads_(threads),
      max_plan_bytes_(max_plan_bytes),
      max_plans_(std::max<size_t>(1, max_plans)) {}

Executor::~Executor() {
  if (repack_ && repack_->thread.joinable()) {
    repack_->cancel = true;
    repack_->thread.join();
  }
}

void Executor::start_deferred_packing() {
  repacked_ = true;
  auto job = std::make_unique<Repack>();
  for (const auto& [key, plan] : plans_) {
    if (plan->weights_deferred) job->keys.push_back(key);
  }
  // Set here, while nothing else uses the backend: the thread below has it
  // to itself until settle_deferred_packing().
  backend_->end_packing_deferral();
  Repack* r = job.get();
  job->thread = std::thread([this, r] {
    const auto start = std::chrono::steady_clock::now();
    try {
      for (const PlanKey& key : r->keys)
        r->plans.push_back(make_plan(key, false, true, &r->cancel));
    } catch (...) {
      r->error = std::current_exception();
    }
    r->seconds = seconds_since(start);
  });
  repack_ = std::move(job);
}

void Executor::settle_deferred_packing() {
  if (!repack_) return;
  const auto start = std::chrono::steady_clock::now();
  repack_->thread.join();
  deferred_.waited_seconds += seconds_since(start);
  deferred_.seconds = repack_->seconds;
  deferred_.done = true;
  if (repack_->error) {
    // The plans keep reading the weights in place; the reason is kept.
    try {
      std::rethrow_exception(repack_->error);
    } catch (const std::exception& e) {
      deferred_.error = e.what();
    } catch (...) {
      deferred_.error = "packing stopped";
    }
  } else {
    for (size_t i = 0; i < repack_->keys.size(); ++i) {
      auto it = plans_.find(repack_->keys[i]);
      if (it == plans_.end()) continue;
      repack_->plans[i]->last_use = it->second->last_use;
      adopt_fused_kinds(*repack_->plans[i]);
      it->second = std::move(repack_->plans[i]);
    }
    last_key_ = nullptr;
    last_plan_ = nullptr;
  }
  repack_.reset();
}

void Executor::adopt_fused_kinds(const Plan& plan) {
  if (plan.per_image) adopt_fused_kinds(*plan.per_image);
  for (const auto& [node, kind] : plan.fused_kinds) {
    fused_kind_.resize(graph_->nodes().size());
    fused_kind_[node] = kind;
  }
}

const PlanStats& Executor::plan(std::span<const int64_t> input_shape,
                                std::span<const uint32_t> outputs) {
  return plan_for(input_shape, outputs).stats;
}

Executor::Plan& Executor::plan_for(std::span<const int64_t> shape,
                                   std::span<const uint32_t> outputs, bool fused) {
  settle_deferred_packing();
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
    adopt_fused_kinds(*plan);
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

std::unique_ptr<Executor::Plan> Executor::make_plan(const PlanKey& key, bool nested, bool replacing,
                                                    const std::atomic<bool>* cancel) {
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
  // The first steps image by image, by a plan of their own; this plan
  // keeps the rest, reading their last output (the boundary).
  const int cut = nested || !key.fused || !on_host
                      ? -1
                      : image_by_image_until(g, *backend_, plan->steps, shapes, output_slot);
  uint32_t boundary = 0;
  if (cut >= 0) {
    plan->per_image_last = plan->steps[static_cast<size_t>(cut)];
    boundary = nodes[plan->per_image_last].output;
    Shape one_image = input_shape;
    one_image[0] = 1;
    plan->per_image =
        make_plan(PlanKey{std::move(one_image), {boundary}, true}, true, replacing, cancel);
    plan->steps.erase(plan->steps.begin(), plan->steps.begin() + cut + 1);
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
  // The kernels copy weights out of the model file's mapping (or keep
  // pointers into it): only from the file verified at load, before and
  // after (a write meanwhile would have mixed bytes into their copies).
  g.check_file_unchanged();
  backend_->prepare_all(g, unfused, fusions, shapes, plan->kernels, cancel);
  g.check_file_unchanged();
  plan->weights_deferred =
      backend_->take_deferred_weights() || (plan->per_image && plan->per_image->weights_deferred);
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
  if (plan->per_image) {  // the boundary: written image by image before the first step
    first[boundary] = static_cast<int>(plan->per_image_last);
    value_request[boundary] = static_cast<int>(requests.size());
    requests.push_back(
        {bytes_of(shapes[boundary], plan->dtypes[boundary]), first[boundary], last[boundary]});
  }
  for (size_t k : plan->steps) {
    const uint32_t out = nodes[k].output;
    if (output_slot[out] < 0) {
      value_request[out] = static_cast<int>(requests.size());
      requests.push_back({bytes_of(shapes[out], plan->dtypes[out]), first[out], last[out]});
    }
  }
  // The image-by-image plan's block, live while the boundary is written:
  // its activations alone here, its whole arena below.
  int per_image_request = -1;
  if (plan->per_image) {
    per_image_request = static_cast<int>(requests.size());
    const int at = static_cast<int>(plan->per_image_last);
    requests.push_back({plan->per_image->stats.activation_bytes, at, at});
  }
  const MemoryPlan activations_alone = plan_memory(requests, kAlignment);
  if (plan->per_image) {
    requests[static_cast<size_t>(per_image_request)].bytes = plan->per_image->stats.arena_bytes;
    scratch_bytes = std::max(scratch_bytes, plan->per_image->stats.scratch_bytes);
  }
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
  bool reads_input = false;
  for (size_t k : plan->steps) {
    for (uint32_t v : plan->step_inputs[k]) reads_input = reads_input || v == g.input();
  }
  const bool stage_input = reads_input && (!on_host || input_dtype != DType::kFloat32);
  const size_t input_bytes = stage_input ? bytes_of(input_shape, input_dtype) : 0;
  const size_t total = memory.arena_bytes + output_bytes + input_bytes;
  if (max_plan_bytes_ > 0 && total > max_plan_bytes_) {
    auto mb = [](size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MB"; };
    throw Error("input shape " + to_string(input_shape) + " needs " + mb(total) +
                " of activations, more than the limit of " + mb(max_plan_bytes_));
  }
  // The plan is accepted: make room before allocating, freeing the least
  // recently used plan (a refused shape evicts nothing).
  if (!nested && !replacing && plans_.size() >= max_plans_) evict_least_recent();
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
  if (plan->per_image) {
    plan->boundary = static_cast<uint8_t*>(address(boundary));
    plan->boundary_image_bytes =
        bytes_of(plan->per_image->shapes[boundary], plan->per_image->dtypes[boundary]);
    // The image-by-image plan's views move from its own arena into its
    // block of this one (kernels get their views only when they run).
    Plan& part = *plan->per_image;
    uint8_t* const from = part.arena->data();
    uint8_t* const to =
        plan->arena->data() + memory.offsets[static_cast<size_t>(per_image_request)];
    const size_t size = part.stats.arena_bytes;
    auto moved = [&](const void* p) -> uint8_t* {
      auto* b = static_cast<uint8_t*>(const_cast<void*>(p));
      return b != nullptr && b >= from && b < from + size ? to + (b - from) : b;
    };
    for (size_t k : part.steps) {
      for (ConstView& in : part.inputs[k]) in.data = moved(in.data);
      part.outputs[k].data = moved(part.outputs[k].data);
      part.scratch[k] = moved(part.scratch[k]);
    }
    part.arena.reset();
    plan->stats.image_by_image_nodes = static_cast<size_t>(cut) + 1;
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
    for (size_t n : f.nodes) plan.fused_kinds.emplace_back(n, f.kind);
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
  p.input = input;
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
  // Kernels read constants in the mapping (biases, norms; on the CPU the
  // weights left in place): not once the file has been written since load,
  // whose bytes they would read unverified, or past whose new end the
  // process would die. (One fstat(); a write during the run goes unseen.)
  graph_->check_file_unchanged();
  if (!profiling_) {
    start_run(p, input);
    // (Two pointers: std::function holds them without allocating.)
    backend_->execute(p.backend_state, [this, &p] { run_steps(p); });
    finish_run(p);
    if (p.weights_deferred && !repacked_) start_deferred_packing();
    return p.results;
  }
  node_seconds_.resize(graph_->nodes().size(), 0.0);
  auto start = std::chrono::steady_clock::now();
  start_run(p, input);
  backend_->finish_run();  // a device's copy is only enqueued
  input_copy_seconds_ += seconds_since(start);
  run_steps(p);
  start = std::chrono::steady_clock::now();
  finish_run(p);
  output_copy_seconds_ += seconds_since(start);
  if (p.weights_deferred && !repacked_) start_deferred_packing();
  return p.results;
}

void Executor::run_steps(Plan& p) {
  if (p.per_image) {
    Plan& part = *p.per_image;
    const int64_t images = p.shapes[graph_->input()][0];
    for (int64_t n = 0; n < images; ++n) {
      start_run(part, p.input + static_cast<size_t>(n) * part.input_count);
      part.outputs[p.per_image_last].data =
          p.boundary + static_cast<size_t>(n) * p.boundary_image_bytes;
      run_steps(part);
    }
  }
  if (!profiling_) {
    for (size_t k : p.steps) p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
    return;
  }
  for (size_t k : p.steps) {
    const auto start = std::chrono::steady_clock::now();
    p.kernels[k]->run(p.inputs[k].data(), p.outputs[k], p.scratch[k]);
    backend_->finish_run();  // a device's kernels are only enqueued
    node_seconds_[k] +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
}

void Executor::run_observed(const float* input, std::span<const int64_t> input_shape,
                            const NodeObserver& observer) {
  Plan& p = plan_for(input_shape, {}, false);
  graph_->check_file_unchanged();  // as run()
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
