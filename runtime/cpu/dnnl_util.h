// Helpers shared by the oneDNN-backed kernels.
#pragma once

#include <dnnl.hpp>

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

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

}  // namespace ravlt::runtime::cpu
