// The reference kernels: every op as plain, obviously correct loops over
// float32 operands, accumulating in double, with no backend type in sight.
// Every backend (runtime/cpu/ per instruction set, runtime/cuda/ per
// precision) is tested against these (tests/runtime/backend_ops_test.cpp).
// They are slow by design: for tests only, never in a session.
#pragma once

#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime::reference {

/// One input of a node: its shape and float32 elements (row-major, the
/// layouts of rvlt.fbs's OpType comments).
struct Operand {
  Shape shape;
  const float* data = nullptr;
};

/// The output of `node` (elements of `output_shape`, in double) for
/// `inputs` (following Node::inputs). Shapes are trusted: check them with
/// the op's shape rule first.
std::vector<double> run(const Node& node, const std::vector<Operand>& inputs,
                        const Shape& output_shape);

// One reference kernel per line of formats/rvlt/ops.def.
#define RAVLT_OP(Name, snake, ...)                                                \
  std::vector<double> snake(const Node& node, const std::vector<Operand>& inputs, \
                            const Shape& output_shape);
#include "formats/rvlt/ops.def"
#undef RAVLT_OP

}  // namespace ravlt::runtime::reference
