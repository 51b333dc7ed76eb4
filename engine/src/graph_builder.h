// RAVLT as a .rvlt graph: the nodes of spec §2-3 in channels-last layout,
// with the conversion-time rewrites of design.md applied to the weights:
//   - every BatchNorm folded into the convolution before it;
//   - each layer scale folded into the projection before it (attn.proj,
//     ffn.fc2);
//   - x + pos(x) and h + dwconv(h) folded into the depthwise kernels' centre
//     taps;
//   - bias, GELU and swish fused into the convolutions and GEMMs that
//     produce them, residual adds into the GEMM that ends each branch.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/src/ravlt_config.h"
#include "formats/rvlt/rvlt_generated.h"
#include "ravlt/dtype.h"

namespace ravlt::engine {

struct BuiltGraph {
  std::unique_ptr<fb::GraphT> graph;
  std::vector<std::vector<uint8_t>> constant_bytes;  // per tensor; empty for activations
};

/// Builds the graph of `arch` from `weights` (float32, as read), storing
/// weights as `weight_dtype` (float32, float16 or bfloat16; RoPE angles stay
/// float32). `weights` is consumed: tensors are folded in place.
///
/// A classifier's graph has one output, "logits"; the pooled features are
/// the value "embedding". A backbone's graph outputs "stage{i+1}" (NCHW)
/// for each stage index i in `out_indices` (0-based, increasing), and ends
/// with the last of them.
BuiltGraph build_graph(const ArchSpec& arch, WeightMap& weights, DType weight_dtype,
                       const std::vector<int>& out_indices = {});

/// The name of a backbone output: "stage{index+1}".
std::string stage_output_name(int index);

}  // namespace ravlt::engine
