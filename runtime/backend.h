// The interface between the runtime and a backend (runtime/cpu/, later
// runtime/cuda/). A backend turns one node, at the concrete shapes of a
// plan, into a prepared Kernel: all validation, primitive creation and
// weight reordering happen in prepare(); run() only computes.
#pragma once

#include <cstddef>
#include <cstdint>
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
  /// `output` and `scratch` are 64-byte aligned. Never allocates, never throws.
  virtual void run(const float* const* inputs, float* output, uint8_t* scratch) = 0;
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
};

}  // namespace ravlt::runtime
