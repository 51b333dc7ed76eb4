// Shapes of every value of a graph for one concrete input shape.
#pragma once

#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime {

/// Returns one shape per graph value (constants as declared). Throws
/// ravlt::Error naming the node and the shapes that do not fit.
std::vector<Shape> infer_shapes(const Graph& graph, const Shape& input);

}  // namespace ravlt::runtime
