// What both attention kernels take from a node: the sizes, checked, and
// the RoPE angles kept float32.
#pragma once

#include <string>

#include "ravlt/error.h"
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {

inline AttentionParams attention_params(const PrepareArgs& args) {
  const Node& node = args.node;
  // The RoPE angles stay float32 whatever the storage: positions times an
  // angle rounded to 16 bits would turn far tokens visibly wrong.
  args.context.constant_storage[node.inputs[2]] = DType::kFloat32;
  const Shape& qkvo = args.input_shape(0);  // (N, H, W, 4C)
  if (node.head_dim <= 0 || node.head_dim % 2 != 0 || node.head_dim > 512) {
    throw Error("node '" + node.name + "': the CUDA attention kernels take an even head_dim of " +
                "at most 512, not " + std::to_string(node.head_dim));
  }
  return AttentionParams{as_int(qkvo[0], node), as_int(qkvo[1], node), as_int(qkvo[2], node),
                         node.heads, node.head_dim};
}

}  // namespace ravlt::runtime::cuda
