// The element type of every value, and the arithmetic type of every GEMM
// and convolution, in a CPU plan (CpuContext::value_dtype, compute_dtype).
//
// In bfloat16, what is stored in 16 bits is what autocast would store so,
// and less: the residual stream (the sum a block's last Linear adds its
// product to, and what that sum feeds into the next block) stays float32,
// because rounding it after every block would add up over the depth of the
// network; so do the pooled features, NCHW feature maps and (sessions) the
// graph's input and outputs. GEMMs and convolutions compute in bfloat16
// from bfloat16 weights, narrowing a float32 source first (as autocast
// casts their inputs), except the positional encoding: its identity is
// folded into its depthwise kernel, and in bfloat16 that would round the
// residual stream it passes on.
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {
namespace {

bool is_residual_linear(const Node& node) {
  return node.op == Op::kLinear && node.inputs.size() == 4;
}

// `value` is added to by a Linear (its residual input).
bool added_to(const Graph& graph, uint32_t value) {
  for (const Node& node : graph.nodes()) {
    if (is_residual_linear(node) && node.inputs[3] == value) return true;
  }
  return false;
}

const Node* producer_of(const Graph& graph, uint32_t value) {
  const int p = graph.producer(value);
  return p < 0 ? nullptr : &graph.nodes()[static_cast<size_t>(p)];
}

// A convolution that writes the residual stream: the positional encoding,
// x + dwconv(x) with the identity in its kernel.
bool is_stream_conv(const Graph& graph, const Node& node) {
  return node.op == Op::kConv2d && added_to(graph, node.output);
}

// The residual stream: a residual Linear's sum, what a Linear adds to, and
// the positional encoding's source (the previous block's sum, or a
// stage's downsampled input).
bool on_residual_stream(const Graph& graph, uint32_t value) {
  const Node* producer = producer_of(graph, value);
  if (producer != nullptr && is_residual_linear(*producer)) return true;
  if (added_to(graph, value)) return true;
  for (const Node& node : graph.nodes()) {
    if (node.inputs[0] == value && is_stream_conv(graph, node)) return true;
  }
  return false;
}

}  // namespace

DType CpuContext::value_dtype(const Graph& graph, uint32_t value) const {
  if (precision == DType::kFloat32 || graph.values()[value].constant) return DType::kFloat32;
  const Node* producer = producer_of(graph, value);
  if (producer != nullptr &&
      (producer->op == Op::kGlobalAvgPool || producer->op == Op::kToChannelsFirst)) {
    return DType::kFloat32;
  }
  if (on_residual_stream(graph, value)) return DType::kFloat32;
  if (float32_interface) {
    if (value == graph.input()) return DType::kFloat32;
    for (uint32_t out : graph.outputs()) {
      if (out == value) return DType::kFloat32;
    }
  }
  return precision;
}

DType CpuContext::compute_dtype(const Graph& graph, const Node& node) const {
  if (precision == DType::kFloat32 || is_stream_conv(graph, node)) return DType::kFloat32;
  return precision;
}

}  // namespace ravlt::runtime::cpu
