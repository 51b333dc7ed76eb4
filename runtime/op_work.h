// The arithmetic of one node: multiply-adds at its plan's shapes, the
// figure a GEMM floor (2 x MACs / a GEMM's rate) and achieved GFLOP/s are
// measured against. One rule per op (formats/rvlt/ops.def).
#pragma once

#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime {

/// Multiply-adds of `node` for the value shapes of one plan (infer_shapes()):
/// - Conv2d: output elements x input channels per group x kernel area;
/// - Linear: output elements x input features;
/// - SoftmaxAttention: 2 L^2 d per image and head (the scores, then the
///   weighted values), L tokens;
/// - RalaAttention: 2 L d^2 per image and head (the key-value state, then its
///   product with the queries);
/// - none for the rest (norms, copies, pooling: they move data).
/// The convention of the model's published figures (RAVLT-T at 224 x 224:
/// 2.61 GMAC).
double node_macs(const Node& node, const std::vector<Shape>& shapes);

}  // namespace ravlt::runtime
