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

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ravlt/dtype.h"
#include "runtime/graph.h"

namespace ravlt::runtime {

/// A kernel's operand: where its elements are and their type. Elements of
/// one type only are read through it (f32() for float32), never 16-bit
/// data through a float pointer.
struct ConstView {
  const void* data = nullptr;
  DType dtype = DType::kFloat32;
  /// The elements as float32; only for a float32 operand.
  const float* f32() const {
    assert(dtype == DType::kFloat32);
    return static_cast<const float*>(data);
  }
};

/// A kernel's output (see ConstView).
struct View {
  void* data = nullptr;
  DType dtype = DType::kFloat32;
  float* f32() const {
    assert(dtype == DType::kFloat32);
    return static_cast<float*>(data);
  }
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  /// Bytes of scratch memory run() needs (placed in the session's arena).
  virtual size_t scratch_bytes() const { return 0; }
  /// Computes the node. `inputs` follow Node::inputs (constants included),
  /// each of the type the plan gave its value; `output` and `scratch` are
  /// 64-byte aligned, in the backend's memory. Never allocates. A host
  /// kernel throws ravlt::Error only when a library it calls reports a
  /// failure (oneDNN's execute status); a device kernel only enqueues work
  /// and its errors surface at Backend::finish_run().
  virtual void run(const ConstView* inputs, View output, uint8_t* scratch) = 0;
};

/// What prepare_all() throws when its cancel flag was raised.
struct PreparationCancelled {};

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

/// Consecutive steps of a plan that one kernel computes at once, the
/// values passed between them never stored (e.g. a whole FFN by bands of
/// rows, its hidden activations staying in the caches).
struct Fusion {
  /// Graph node indices, consecutive steps of the plan; the output of each
  /// is read by the next one only.
  std::vector<size_t> nodes;
  /// What the kernel's run() gets, in this order: the nodes' inputs that
  /// come from outside the chain.
  std::vector<uint32_t> inputs;
  /// What profiles call it ("Linear+Conv2d+Linear").
  std::string kind;
};

class Backend {
 public:
  virtual ~Backend() = default;
  /// Prepares `node` for the value shapes of one plan. Throws ravlt::Error
  /// naming the node if it cannot run.
  virtual std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                          const std::vector<Shape>& shapes) = 0;
  /// The fusions this backend runs among a plan's `steps` (graph order);
  /// none by default. `readers[v]`: how many steps read value v, plus one
  /// where the caller asked for v: a value is fused away only where that is
  /// one (the next node of the chain).
  virtual std::vector<Fusion> fuse(const Graph& graph, const std::vector<size_t>& steps,
                                   const std::vector<Shape>& shapes,
                                   const std::vector<int>& readers) {
    (void)graph, (void)steps, (void)shapes, (void)readers;
    return {};
  }
  /// The kernel of a fusion fuse() proposed. Its run() gets the fusion's
  /// inputs and the last node's output.
  virtual std::unique_ptr<Kernel> prepare_fused(const Graph& graph, const Fusion& fusion,
                                                const std::vector<Shape>& shapes);
  /// Prepares the nodes `steps` (indices into graph.nodes()) of one plan
  /// into kernels[step] (kernels has a slot per node), and each of
  /// `fusions` into kernels[its last node]. One after another by default;
  /// a backend whose prepare() may run concurrently spreads them over its
  /// threads. Throws the error of the first one that fails. Where `cancel`
  /// is given and becomes true, the jobs not yet started are skipped and
  /// PreparationCancelled is thrown.
  virtual void prepare_all(const Graph& graph, const std::vector<size_t>& steps,
                           const std::vector<Fusion>& fusions, const std::vector<Shape>& shapes,
                           std::vector<std::unique_ptr<Kernel>>& kernels,
                           const std::atomic<bool>* cancel = nullptr);
  /// Packing after the first run (SessionOptions::defer_packing): whether
  /// kernels prepared since the last call read weights in place that this
  /// backend packs once end_packing_deferral() is called. The executor
  /// asks after each plan it makes, and after a deferred plan's first run
  /// makes it again, in the background, with packing on.
  virtual bool take_deferred_weights() { return false; }
  /// From now on, kernels read packed weights (plans made earlier keep theirs).
  virtual void end_packing_deferral() {}
  /// Called before each run: the thread count every kernel of the run uses.
  virtual void begin_run(int threads) = 0;
  /// A run of several images takes its first nodes one image at a time,
  /// up to a point past the last node whose output for the whole batch is
  /// larger than this many bytes, and the rest batched (0: always batched).
  /// Where the batch's activations outgrow the caches, a node per image
  /// keeps its data in them; later nodes gain more from batched GEMMs.
  virtual size_t image_by_image_bytes() const { return 0; }

  // --- Device backends override the rest. ---

  /// The element type of the activations (every computed value) in this
  /// backend's memory. The graph's input and the values handed back to the
  /// caller are float32 on the host whatever this is (copy_in/copy_out
  /// convert).
  virtual DType activation_dtype() const { return DType::kFloat32; }
  /// The element type of non-constant `value` (the graph's input or a
  /// computed value) in this backend's memory: activation_dtype() unless a
  /// backend keeps some values in another type (the CPU in bfloat16 keeps
  /// its input, residual stream, pooled features and outputs in float32).
  /// Kernels are prepared for these types.
  virtual DType value_dtype(const Graph& graph, uint32_t value) const {
    (void)graph;
    (void)value;
    return activation_dtype();
  }
  /// The element type constant `value` is stored in for this backend's
  /// kernels (asked after every node of a plan is prepared).
  virtual DType constant_dtype(uint32_t value) const {
    (void)value;
    return DType::kFloat32;
  }

  /// False when kernels work in memory of their own (a GPU's).
  virtual bool uses_host_memory() const { return true; }
  /// `bytes` (at least 1) of the backend's memory, 64-byte aligned.
  /// Throws ravlt::Error when it cannot.
  virtual std::unique_ptr<BackendMemory> allocate(size_t bytes);
  /// Where kernels read constant value `value` of `graph` (elements of
  /// constant_dtype(value)): the graph's own float32 data on the host, an
  /// uploaded copy on a device.
  virtual const void* constant(const Graph& graph, uint32_t value) {
    return graph.values()[value].data;
  }
  /// `count` float32 elements from the host into backend memory holding
  /// `dst_type`, and back; in order with the run's kernels.
  virtual void copy_in(void* backend_dst, DType dst_type, const float* host_src, size_t count);
  virtual void copy_out(float* host_dst, const void* backend_src, DType src_type, size_t count);
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
