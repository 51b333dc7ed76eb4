// Helpers shared by the oneDNN-backed kernels.
#pragma once

#include <dnnl.hpp>
#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime::cpu {

/// Adds the activation as an eltwise post-op (none: nothing).
inline void append_activation(dnnl::post_ops& ops, Activation act) {
  switch (act) {
    case Activation::kNone:
      break;
    case Activation::kGelu:  // exact GELU, with erf
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
      break;
    case Activation::kSwish:  // x * sigmoid(alpha x), alpha = 1
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
      break;
  }
}

/// Attributes every primitive gets: scratchpad in our arena, not oneDNN's heap.
inline dnnl::primitive_attr base_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

/// Arguments of a primitive in oneDNN's C form, built once at prepare: the
/// C++ execute() copies its argument map into a new vector on every call,
/// and a run must not allocate.
class PrimitiveArgs {
 public:
  void add(int arg, const dnnl::memory& memory) { args_.push_back({arg, memory.get()}); }
  void execute(const dnnl::primitive& primitive, dnnl::stream& stream) const {
    dnnl_primitive_execute(primitive.get(), stream.get(), static_cast<int>(args_.size()),
                           args_.data());
    dnnl_stream_wait(stream.get());
  }

 private:
  std::vector<dnnl_exec_arg_t> args_;
};

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

}  // namespace ravlt::runtime::cpu
