#include "runtime/shape_inference.h"

#include "ravlt/error.h"
#include "runtime/op_shapes.h"

namespace ravlt::runtime {
namespace {

// Largest size of any activation dimension: keeps element counts of a
// hostile or mistaken input far from overflow.
constexpr int64_t kMaxSide = int64_t{1} << 20;

}  // namespace

std::vector<Shape> infer_shapes(const Graph& graph, const Shape& input) {
  const auto& values = graph.values();
  std::vector<Shape> shapes(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].constant) shapes[i] = values[i].shape;
  }
  const Shape& declared = values[graph.input()].shape;
  bool fits = input.size() == declared.size();
  for (size_t i = 0; fits && i < input.size(); ++i) {
    fits = input[i] > 0 && input[i] <= kMaxSide && (declared[i] < 0 || declared[i] == input[i]);
  }
  if (!fits) {
    throw Error("input shape " + to_string(input) + " does not fit the model's input " +
                to_string(declared) + " (-1: any size)");
  }
  shapes[graph.input()] = input;

  for (const Node& n : graph.nodes()) {
    const ShapeRuleArgs rule{n, shapes};
    Shape out = output_shape(rule);
    // No value may ask for more than the runtime's limit (a file cannot make
    // a plan allocate without bound, whatever its shapes and input).
    int64_t elements = 1;
    for (int64_t d : out) {
      if (d < 0 || (d > 0 && elements > kMaxValueElements / d)) {
        rule.fail("output " + to_string(out) + " exceeds the limit of " +
                  std::to_string(kMaxValueElements) + " elements per tensor");
      }
      elements *= d;
    }
    shapes[n.output] = std::move(out);
  }
  return shapes;
}

}  // namespace ravlt::runtime
