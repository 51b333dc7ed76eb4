// Each op's shape rule: the shape of a node's output from its inputs'
// shapes and its attributes, with a clear error when they do not fit. One
// function per line of formats/rvlt/ops.def (op_shapes.cpp), declared and
// tabled from that list.
#pragma once

#include <string>
#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime {

/// What a shape rule sees: one node and the shapes of the plan so far.
struct ShapeRuleArgs {
  const Node& node;
  const std::vector<Shape>& shapes;

  const Shape& input(size_t slot) const { return shapes[node.inputs[slot]]; }
  /// Throws ravlt::Error "node 'NAME' (Op): what".
  [[noreturn]] void fail(const std::string& what) const;
  /// fail()s unless input `slot` has rank `rank`.
  void expect_rank(size_t slot, size_t rank) const;
};

#define RAVLT_OP(Name, snake, ...) Shape snake##_shape(const ShapeRuleArgs& args);
#include "formats/rvlt/ops.def"
#undef RAVLT_OP

/// The output shape of args.node (its op's rule).
Shape output_shape(const ShapeRuleArgs& args);

}  // namespace ravlt::runtime
