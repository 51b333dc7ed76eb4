// Shapes of every value of a graph for one concrete input shape.
#pragma once

#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime {

/// Most elements one value may hold (16 GiB of float32): a plan asking
/// for more is refused with an error naming the node.
inline constexpr int64_t kMaxValueElements = int64_t{1} << 32;

/// Returns one shape per graph value (constants as declared). Throws
/// ravlt::Error naming the node and the shapes that do not fit.
std::vector<Shape> infer_shapes(const Graph& graph, const Shape& input);

}  // namespace ravlt::runtime
