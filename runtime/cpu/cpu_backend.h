// The CPU backend: oneDNN for convolutions and GEMMs, our own kernels for
// the rest. Threads: OpenMP, shared by oneDNN and our kernels, so one
// setting governs both.
#pragma once

#include <memory>

#include "runtime/backend.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {

class CpuBackend : public Backend {
 public:
  /// `threads`: what every run of this backend uses (0: all cores); the
  /// kernels also size their work split by it.
  explicit CpuBackend(std::shared_ptr<WeightCache> weights, int threads = 0);
  std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                  const std::vector<Shape>& shapes) override;
  void begin_run(int threads) override;

 private:
  CpuContext context_;
};

/// Number of threads a run uses when asked for 0: all cores.
int default_threads();

}  // namespace ravlt::runtime::cpu
