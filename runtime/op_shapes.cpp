#include "runtime/op_shapes.h"

#include "ravlt/error.h"

namespace ravlt::runtime {

void ShapeRuleArgs::fail(const std::string& what) const {
  throw Error("node '" + node.name + "' (" + op_name(node.op) + "): " + what);
}

void ShapeRuleArgs::expect_rank(size_t slot, size_t rank) const {
  if (input(slot).size() != rank) {
    fail("input of shape " + to_string(input(slot)) + " is not of rank " + std::to_string(rank));
  }
}

Shape to_channels_last_shape(const ShapeRuleArgs& args) {
  args.expect_rank(0, 4);
  const Shape& x = args.input(0);  // (N, C, H, W)
  return {x[0], x[2], x[3], x[1]};
}

Shape to_channels_first_shape(const ShapeRuleArgs& args) {
  args.expect_rank(0, 4);
  const Shape& x = args.input(0);  // (N, H, W, C)
  return {x[0], x[3], x[1], x[2]};
}

Shape conv2d_shape(const ShapeRuleArgs& args) {
  args.expect_rank(0, 4);
  const Node& n = args.node;
  const Shape& x = args.input(0);
  const Shape& w = args.input(1);
  if (x[3] != w[1] * n.conv.groups) {
    args.fail("input has " + std::to_string(x[3]) + " channels, the weight " + to_string(w) +
              " with " + std::to_string(n.conv.groups) + " groups expects " +
              std::to_string(w[1] * n.conv.groups));
  }
  const int64_t h = (x[1] + 2 * n.conv.pad_h - n.conv.kernel_h) / n.conv.stride_h + 1;
  const int64_t wd = (x[2] + 2 * n.conv.pad_w - n.conv.kernel_w) / n.conv.stride_w + 1;
  if (h <= 0 || wd <= 0) args.fail("input " + to_string(x) + " is smaller than the kernel");
  return {x[0], h, wd, w[0]};
}

Shape linear_shape(const ShapeRuleArgs& args) {
  const Shape& x = args.input(0);
  const Shape& w = args.input(1);
  if (x.empty() || x.back() != w[1]) {
    args.fail("input " + to_string(x) + " does not end in the weight's " + std::to_string(w[1]) +
              " input features");
  }
  Shape out = x;
  out.back() = w[0];
  if (args.node.inputs.size() == 4 && args.input(3) != out) {
    args.fail("residual " + to_string(args.input(3)) + " differs from the output " +
              to_string(out));
  }
  return out;
}

Shape layer_norm_shape(const ShapeRuleArgs& args) {
  const Shape& x = args.input(0);
  if (x.empty() || x.back() != args.input(1)[0]) {
    args.fail("input " + to_string(x) + " does not match the " + std::to_string(args.input(1)[0]) +
              " normalized channels");
  }
  return x;
}

Shape channel_slice_shape(const ShapeRuleArgs& args) {
  const Node& n = args.node;
  const Shape& x = args.input(0);
  if (x.empty() || n.slice_end > x.back()) {
    args.fail("slice [" + std::to_string(n.slice_begin) + ", " + std::to_string(n.slice_end) +
              ") exceeds input " + to_string(x));
  }
  Shape out = x;
  out.back() = n.slice_end - n.slice_begin;
  return out;
}

namespace {

// RalaAttention and SoftmaxAttention: qkvo (N, H, W, 4C), lepe (N, H, W, C).
Shape attention_shape(const ShapeRuleArgs& args) {
  args.expect_rank(0, 4);
  const Node& n = args.node;
  const Shape& x = args.input(0);
  const int64_t c = int64_t{n.heads} * n.head_dim;
  if (x[3] != 4 * c) {
    args.fail("qkvo " + to_string(x) + " does not hold 4 x " + std::to_string(n.heads) +
              " heads x " + std::to_string(n.head_dim));
  }
  Shape out = {x[0], x[1], x[2], c};
  if (args.input(1) != out) {
    args.fail("lepe " + to_string(args.input(1)) + " differs from " + to_string(out));
  }
  return out;
}

}  // namespace

Shape rala_attention_shape(const ShapeRuleArgs& args) {
  return attention_shape(args);
}

Shape softmax_attention_shape(const ShapeRuleArgs& args) {
  return attention_shape(args);
}

Shape global_avg_pool_shape(const ShapeRuleArgs& args) {
  args.expect_rank(0, 4);
  const Shape& x = args.input(0);
  return {x[0], x[3]};
}

namespace {

using ShapeRule = Shape (*)(const ShapeRuleArgs&);
// One entry per runtime::Op, in its order.
constexpr ShapeRule kShapeRules[] = {
#define RAVLT_OP(Name, snake, ...) snake##_shape,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
static_assert(sizeof(kShapeRules) / sizeof(kShapeRules[0]) == kOpCount,
              "every op needs a shape rule");

}  // namespace

Shape output_shape(const ShapeRuleArgs& args) {
  return kShapeRules[static_cast<size_t>(args.node.op)](args);
}

}  // namespace ravlt::runtime
