// The interface between the runtime and a backend (runtime/cpu/,
// runtime/cuda/). A backend turns one node, at the concrete shapes of a
// plan, into a prepared Kernel: all validation, primitive creation and
// weight reordering happen in prepare(); run() only computes.
//
// Memory: a host backend's kernels read the caller's input, the graph's
// constants and the executor's host arena in place. A device backend
// (uses_host_memory() false) gets its arena, input and output buffers from
// allocate(), its constants from constant(), and the executor stages the
// input and output through copy_in()/copy_out(); every call of one run is
// ordered (one stream), and finish_run() waits for all of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime {

class Kernel {
 public:
  virtual ~Kernel() = default;
  /// Bytes of scratch memory run() needs (placed in the session's arena).
  virtual size_t scratch_bytes() const { return 0; }
  /// Computes the node. `inputs` follow Node::inputs (constants included);
  /// `output` and `scratch` are 64-byte aligned, in the backend's memory.
  /// Never allocates, never throws (a device backend only enqueues work).
  virtual void run(const float* const* inputs, float* output, uint8_t* scratch) = 0;
};

/// A block of a backend's memory, freed with the object.
class BackendMemory {
 public:
  virtual ~BackendMemory() = default;
  virtual uint8_t* data() const = 0;
};

/// 64-byte aligned host memory (what Backend::allocate gives by default).
std::unique_ptr<BackendMemory> allocate_host(size_t bytes);

/// What a backend keeps per plan between runs (e.g. a recorded CUDA graph).
class PlanState {
 public:
  virtual ~PlanState() = default;
};

/// What a backend's kernel factories get: one node at the shapes of one
/// plan, and the backend's own context (its weight cache, stream, ...).
template <typename Context>
struct PrepareArgsFor {
  const Graph& graph;
  const Node& node;
  const std::vector<Shape>& shapes;
  Context& context;

  const Shape& input_shape(size_t slot) const { return shapes[node.inputs[slot]]; }
  const Shape& output_shape() const { return shapes[node.output]; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  /// Prepares `node` for the value shapes of one plan. Throws ravlt::Error
  /// naming the node if it cannot run.
  virtual std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                          const std::vector<Shape>& shapes) = 0;
  /// Called before each run: the thread count every kernel of the run uses.
  virtual void begin_run(int threads) = 0;

  // --- Device backends override the rest. ---

  /// False when kernels work in memory of their own (a GPU's).
  virtual bool uses_host_memory() const { return true; }
  /// `bytes` (at least 1) of the backend's memory, 64-byte aligned.
  /// Throws ravlt::Error when it cannot.
  virtual std::unique_ptr<BackendMemory> allocate(size_t bytes);
  /// Where kernels read constant value `value` of `graph`: the graph's own
  /// float32 data on the host, an uploaded copy on a device.
  virtual const float* constant(const Graph& graph, uint32_t value) {
    return graph.values()[value].data;
  }
  /// Host to backend memory and back, in order with the run's kernels.
  virtual void copy_in(void* backend_dst, const void* host_src, size_t bytes);
  virtual void copy_out(void* host_dst, const void* backend_src, size_t bytes);
  /// Runs `launch_all` (every kernel of one plan, in order). A backend may
  /// record the launches once per plan and replay the recording on later
  /// runs (CUDA graphs); `state` is the plan's own slot for it, empty on
  /// the first run. Not used for profiled or observed runs.
  virtual void execute(std::unique_ptr<PlanState>& state, const std::function<void()>& launch_all) {
    (void)state;
    launch_all();
  }
  /// Waits for everything enqueued so far (copies included).
  virtual void finish_run() {}
};

}  // namespace ravlt::runtime
