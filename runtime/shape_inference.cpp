#include "runtime/shape_inference.h"

#include "ravlt/error.h"

namespace ravlt::runtime {
namespace {

// Largest size of any activation dimension: keeps element counts of a
// hostile or mistaken input far from overflow.
constexpr int64_t kMaxSide = int64_t{1} << 20;

[[noreturn]] void fail(const Node& n, const std::string& what) {
  throw Error("node '" + n.name + "' (" + op_name(n.op) + "): " + what);
}

void expect_rank(const Node& n, const Shape& s, size_t rank) {
  if (s.size() != rank) {
    fail(n, "input of shape " + to_string(s) + " is not of rank " + std::to_string(rank));
  }
}

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
    const Shape& x = shapes[n.inputs[0]];
    Shape out;
    switch (n.op) {
      case Op::kToChannelsLast:
        expect_rank(n, x, 4);
        out = {x[0], x[2], x[3], x[1]};
        break;
      case Op::kConv2d: {
        expect_rank(n, x, 4);
        const Shape& w = shapes[n.inputs[1]];
        if (x[3] != w[1] * n.conv.groups) {
          fail(n, "input has " + std::to_string(x[3]) + " channels, the weight " + to_string(w) +
                      " with " + std::to_string(n.conv.groups) + " groups expects " +
                      std::to_string(w[1] * n.conv.groups));
        }
        const int64_t h = (x[1] + 2 * n.conv.pad_h - n.conv.kernel_h) / n.conv.stride_h + 1;
        const int64_t wd = (x[2] + 2 * n.conv.pad_w - n.conv.kernel_w) / n.conv.stride_w + 1;
        if (h <= 0 || wd <= 0) fail(n, "input " + to_string(x) + " is smaller than the kernel");
        out = {x[0], h, wd, w[0]};
        break;
      }
      case Op::kLinear: {
        const Shape& w = shapes[n.inputs[1]];
        if (x.empty() || x.back() != w[1]) {
          fail(n, "input " + to_string(x) + " does not end in the weight's " +
                      std::to_string(w[1]) + " input features");
        }
        out = x;
        out.back() = w[0];
        if (n.inputs.size() == 4 && shapes[n.inputs[3]] != out) {
          fail(n, "residual " + to_string(shapes[n.inputs[3]]) + " differs from the output " +
                      to_string(out));
        }
        break;
      }
      case Op::kLayerNorm:
        if (x.empty() || x.back() != shapes[n.inputs[1]][0]) {
          fail(n, "input " + to_string(x) + " does not match the " +
                      std::to_string(shapes[n.inputs[1]][0]) + " normalized channels");
        }
        out = x;
        break;
      case Op::kChannelSlice:
        if (x.empty() || n.slice_end > x.back()) {
          fail(n, "slice [" + std::to_string(n.slice_begin) + ", " + std::to_string(n.slice_end) +
                      ") exceeds input " + to_string(x));
        }
        out = x;
        out.back() = n.slice_end - n.slice_begin;
        break;
      case Op::kRalaAttention:
      case Op::kSoftmaxAttention: {
        expect_rank(n, x, 4);
        const int64_t c = int64_t{n.heads} * n.head_dim;
        if (x[3] != 4 * c) {
          fail(n, "qkvo " + to_string(x) + " does not hold 4 x " + std::to_string(n.heads) +
                      " heads x " + std::to_string(n.head_dim));
        }
        out = {x[0], x[1], x[2], c};
        if (shapes[n.inputs[1]] != out) {
          fail(n, "lepe " + to_string(shapes[n.inputs[1]]) + " differs from " + to_string(out));
        }
        break;
      }
      case Op::kGlobalAvgPool:
        expect_rank(n, x, 4);
        out = {x[0], x[3]};
        break;
    }
    // No value may ask for more than the runtime's limit (a file cannot make
    // a plan allocate without bound, whatever its shapes and input).
    int64_t elements = 1;
    for (int64_t d : out) {
      if (d < 0 || (d > 0 && elements > kMaxValueElements / d)) {
        fail(n, "output " + to_string(out) + " exceeds the limit of " +
                    std::to_string(kMaxValueElements) + " elements per tensor");
      }
      elements *= d;
    }
    shapes[n.output] = std::move(out);
  }
  return shapes;
}

}  // namespace ravlt::runtime
