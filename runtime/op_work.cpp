#include "runtime/op_work.h"

namespace ravlt::runtime {
namespace {

double elements(const Shape& shape) {
  return static_cast<double>(element_count(shape));
}

struct WorkArgs {
  const Node& node;
  const std::vector<Shape>& shapes;
  const Shape& input(size_t slot) const { return shapes[node.inputs[slot]]; }
  const Shape& output() const { return shapes[node.output]; }
};

// Ops that move data: no arithmetic counted.
double to_channels_last_macs(const WorkArgs&) {
  return 0.0;
}
double to_channels_first_macs(const WorkArgs&) {
  return 0.0;
}
double layer_norm_macs(const WorkArgs&) {
  return 0.0;
}
double channel_slice_macs(const WorkArgs&) {
  return 0.0;
}
double global_avg_pool_macs(const WorkArgs&) {
  return 0.0;
}

// The weight (O, C / groups, KH, KW): every output element sums one slice.
double conv2d_macs(const WorkArgs& a) {
  const Shape& w = a.input(1);
  return elements(a.output()) * static_cast<double>(w[1] * w[2] * w[3]);
}

// The weight (O, K).
double linear_macs(const WorkArgs& a) {
  return elements(a.output()) * static_cast<double>(a.input(1)[1]);
}

// The output (N, H, W, heads x d).
double softmax_attention_macs(const WorkArgs& a) {
  const Shape& out = a.output();
  const double tokens = static_cast<double>(out[1] * out[2]);
  return 2.0 * elements(out) * tokens;  // N heads L d x 2 L
}

double rala_attention_macs(const WorkArgs& a) {
  return 2.0 * elements(a.output()) * a.node.head_dim;  // N heads L d x 2 d
}

using WorkRule = double (*)(const WorkArgs&);
// One entry per runtime::Op, in its order.
constexpr WorkRule kWorkRules[] = {
#define RAVLT_OP(Name, snake, ...) snake##_macs,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
static_assert(sizeof(kWorkRules) / sizeof(kWorkRules[0]) == kOpCount, "every op needs a work rule");

}  // namespace

double node_macs(const Node& node, const std::vector<Shape>& shapes) {
  return kWorkRules[static_cast<size_t>(node.op)](WorkArgs{node, shapes});
}

}  // namespace ravlt::runtime
