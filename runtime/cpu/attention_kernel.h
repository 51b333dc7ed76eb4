// What the attention kernels share: the problem's sizes, the plan's RoPE
// tables, the gated output.
#pragma once

#include "ravlt/error.h"
#include "runtime/cpu/isa_kernels.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/rope_tables.h"

namespace ravlt::runtime::cpu {

/// Whether `tasks` (image, head) pairs share out as whole tasks over
/// `threads`: as many tasks as threads, a multiple of them, or at least four
/// per thread, so that the busiest thread has at most a quarter more than
/// the mean. Else the attention kernels split each task's tokens.
inline bool whole_tasks_per_thread(int64_t tasks, int64_t threads) {
  return tasks >= threads && (tasks % threads == 0 || tasks >= 4 * threads);
}

class AttentionKernel : public Kernel {
 protected:
  /// The gated output of `rows` rows of d_ floats each, in place:
  /// acc = (acc / sum + lepe) * o, row r's sum at sum[r] (the kernels on
  /// oneDNN matmuls, after their second GEMM).
  void gate_rows(float* acc, const float* sum, const float* lepe, const float* o,
                 int64_t rows) const {
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.0f / sum[r];
      float* row = acc + r * d_;
      const float* lp = lepe + r * d_;
      const float* gate = o + r * d_;
      for (int e = 0; e < d_; ++e) row[e] = (row[e] * inv + lp[e]) * gate[e];
    }
  }

  /// Inputs: qkvo (N, H, W, 4C), lepe (N, H, W, C), the RoPE angle table.
  explicit AttentionKernel(const PrepareArgs& a)
      : n_(a.output_shape()[0]),
        h_(a.output_shape()[1]),
        w_(a.output_shape()[2]),
        heads_(a.node.heads),
        d_(a.node.head_dim),
        rope_(stored_constant(a.graph, a.node.inputs[2], a.context), a.node.head_dim, h_, w_) {
    if (d_ > kMaxHeadDim) {
      throw Error("node '" + a.node.name + "': head dimension " + std::to_string(d_) +
                  " is above " + std::to_string(kMaxHeadDim));
    }
  }

  int64_t n_, h_, w_;
  int heads_, d_;
  RopeTables rope_;
};

}  // namespace ravlt::runtime::cpu
