// What the two attention kernels share: the problem's sizes, the plan's RoPE
// tables.
#pragma once

#include "ravlt/error.h"
#include "runtime/cpu/isa_kernels.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/rope_tables.h"

namespace ravlt::runtime::cpu {

class AttentionKernel : public Kernel {
 protected:
  /// Inputs: qkvo (N, H, W, 4C), lepe (N, H, W, C), the RoPE angle table.
  explicit AttentionKernel(const PrepareArgs& a)
      : n_(a.output_shape()[0]),
        h_(a.output_shape()[1]),
        w_(a.output_shape()[2]),
        heads_(a.node.heads),
        d_(a.node.head_dim),
        rope_(a.graph.values()[a.node.inputs[2]].data, a.node.head_dim, h_, w_) {
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
