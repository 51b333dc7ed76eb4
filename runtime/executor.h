// Runs a graph for one session: plans per input shape and set of requested
// outputs (cached), one arena.
//
// A plan is made once per (input shape, outputs): shapes inferred, the
// nodes the requested outputs need found (the rest never run), each one's
// kernel prepared by the backend, and every intermediate value and kernel
// scratch placed in one arena by the memory planner. Requested outputs live
// outside the arena, alive to the end of the run. Running a planned shape
// again allocates nothing. An Executor is used by one thread at a time.
//
// A batch whose first activations outgrow the caches (see
// Backend::image_by_image_bytes) runs those nodes one image at a time, by a
// plan of their own for one image, up to a value that is then all the rest
// reads: each image's copy of it lands in its place in the batch's, and
// the rest of the nodes run batched.
//
// Packing after the first run: where the backend left weights in place for
// a plan (Backend::take_deferred_weights), that plan's first run reads them
// so, and as it returns a thread of the executor makes the plan again with
// packed weights. The next call that plans or runs waits for it and swaps
// the new plan in: the first result comes without the packing's time, and
// a caller that does other work before its next run does not wait at all.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/backend.h"
#include "runtime/graph.h"
#include "runtime/memory_planner.h"

namespace ravlt::runtime {

struct PlanStats {
  size_t arena_bytes = 0;            // every intermediate and every kernel's scratch
  size_t lower_bound = 0;            // most bytes live at one step, scratch included
  size_t activation_bytes = 0;       // the intermediates alone (each in its type), planned alone
  size_t scratch_bytes = 0;          // the largest scratch of one kernel
  size_t output_bytes = 0;           // the requested outputs, in the backend's memory
  std::vector<Shape> output_shapes;  // per requested output, in the order asked
  size_t image_by_image_nodes = 0;   // the first nodes, run one image at a time
};

class Executor {
 public:
  /// `max_plan_bytes` bounds the arena plus output of any one plan (0: no
  /// bound): a shape, or a file, that asks for more is an error, not an
  /// allocation the system cannot back. At most `max_plans` plans (at
  /// least 1) are kept: planning one more shape first frees the least
  /// recently used plan and its memory.
  Executor(std::shared_ptr<const Graph> graph, std::unique_ptr<Backend> backend, int threads,
           size_t max_plan_bytes = 0, size_t max_plans = kDefaultMaxPlans);

  /// The default bound of the plan cache (SessionOptions::max_cached_plans).
  static constexpr size_t kDefaultMaxPlans = 8;
  /// Plans held now.
  size_t cached_plans() const { return plans_.size(); }
  /// Stops packing in the background (between two kernels) and waits for it.
  ~Executor();

  /// The packing after a first run (see above), once a call has waited
  /// for it: its time on its own thread, how long calls waited for it,
  /// and why it failed (empty: it did not; the plans kept reading the
  /// weights in place).
  struct DeferredPacking {
    bool done = false;  // false: none was started, or it has not been waited for
    double seconds = 0.0;
    double waited_seconds = 0.0;
    std::string error;
  };
  const DeferredPacking& deferred_packing() const { return deferred_; }

  /// Makes (or finds) the plan for `input_shape` computing `outputs`
  /// (graph values; empty: the graph's declared outputs), after waiting for
  /// a packing in the background, which replaces plans. Throws
  /// ravlt::Error on a value that is not computed by a node.
  const PlanStats& plan(std::span<const int64_t> input_shape,
                        std::span<const uint32_t> outputs = {});
  /// Runs on `input` (NCHW float32 of `input_shape`); returns each requested
  /// output as float32 on the host, in the order asked, owned by the
  /// executor and valid until the next call of run() or plan().
  std::span<const float* const> run(const float* input, std::span<const int64_t> input_shape,
                                    std::span<const uint32_t> outputs = {});

  /// Called after each node of an observed run with the node's index, its
  /// output (valid only during the call: the arena reuses it) and its shape.
  using NodeObserver = std::function<void(size_t node, const float* output, const Shape& shape)>;
  /// run() of the declared outputs (every node runs), calling `observer`
  /// after every node.
  void run_observed(const float* input, std::span<const int64_t> input_shape,
                    const NodeObserver& observer);

  /// When on, each run adds the time of every node to node_seconds().
  void set_profiling(bool on) { profiling_ = on; }
  /// Seconds spent in each node (graph order) over the profiled runs. A
  /// fusion's time counts at its last node (the others' stays 0).
  const std::vector<double>& node_seconds() const { return node_seconds_; }
  /// Seconds the profiled runs spent staging the input in (before the
  /// first node: a device's copy of it, waited for) and the outputs out
  /// (after the last); 0 where the kernels read the caller's input and
  /// write the results in place (the CPU backend in float32).
  double input_copy_seconds() const { return input_copy_seconds_; }
  double output_copy_seconds() const { return output_copy_seconds_; }
  /// What profiles call node `node`: the kind of the fusion it ran in (in
  /// any plan made so far), else nullptr (its op).
  const std::string* fused_kind(size_t node) const {
    return node < fused_kind_.size() && !fused_kind_[node].empty() ? &fused_kind_[node] : nullptr;
  }

 private:
  struct Plan;
  // A plan's key: the input shape, the requested output values, and
  // whether the backend may fuse nodes (not for observed runs, which see
  // every node's output).
  struct PlanKey {
    Shape shape;
    std::vector<uint32_t> outputs;
    bool fused = true;
    bool operator<(const PlanKey& o) const {
      return std::tie(shape, outputs, fused) < std::tie(o.shape, o.outputs, o.fused);
    }
  };
  Plan& plan_for(std::span<const int64_t> input_shape, std::span<const uint32_t> outputs,
                 bool fused = true);
  // Plans `outputs` for `input_shape`; once the plan fits the memory bound,
  // frees the least recently used plan if the cache is full, then allocates.
  // `nested`: the image-by-image part of another plan (never split again,
  // never evicting: the plan being made is not cached yet).
  // `replacing`: a plan made again in the background (never evicting: the
  // plan it replaces holds the slot), prepared until `cancel` is raised.
  std::unique_ptr<Plan> make_plan(const PlanKey& key, bool nested = false, bool replacing = false,
                                  const std::atomic<bool>* cancel = nullptr);
  // After a plan's first run: makes every plan whose weights were left in
  // place again, packed, on a thread of its own.
  void start_deferred_packing();
  // Waits for that thread, if any, and swaps its plans in.
  void settle_deferred_packing();
  // Records the fused kinds of `plan` (and its image-by-image part).
  void adopt_fused_kinds(const Plan& plan);
  // Asks the backend which steps of `plan` run fused, checks its answer,
  // and leaves each chain in plan.steps as its last node, reading the
  // chain's inputs (plan.step_inputs).
  std::vector<Fusion> fuse_steps(Plan& plan, const std::vector<uint32_t>& outputs);
  void evict_least_recent();
  // Around the kernels of one run: the input in, the outputs out.
  void start_run(Plan& plan, const float* input);
  void finish_run(Plan& plan);
  // The plan's kernels in order (timed per node when profiling), its
  // image-by-image part first, once per image.
  void run_steps(Plan& plan);

  std::shared_ptr<const Graph> graph_;
  std::unique_ptr<Backend> backend_;
  int threads_;
  size_t max_plan_bytes_;
  size_t max_plans_;
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
  uint64_t uses_ = 0;  // the clock of the least-recently-used eviction
  // The last plan used, found without building a key (which allocates).
  const PlanKey* last_key_ = nullptr;
  Plan* last_plan_ = nullptr;
  bool profiling_ = false;
  std::vector<double> node_seconds_;
  double input_copy_seconds_ = 0.0, output_copy_seconds_ = 0.0;
  std::vector<std::string> fused_kind_;  // per node: its fusion's kind, or empty
  struct Repack;
  std::unique_ptr<Repack> repack_;  // the packing in the background, until waited for
  bool repacked_ = false;           // one was started: later plans are packed
  DeferredPacking deferred_;
};

}  // namespace ravlt::runtime
