// A whole FFN (fc1 with GELU, its 3x3 depthwise convolution, fc2 with the
// residual) as one CPU kernel, by bands of image rows: fused_ffn.cpp.
#pragma once

#include <memory>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {

/// Fusion::kind of these chains.
inline constexpr const char* kFusedFfnKind = "Linear+Conv2d+Linear";

/// The FFN chains among a plan's `steps` that run fused (Backend::fuse):
/// a Linear (GELU or no activation) into a 3x3 depthwise Conv2d (stride 1,
/// padding 1, no activation) into a Linear (no activation), each feeding
/// only the next, on channels-last maps whose hidden activations are too
/// large for the caches to hold between nodes; in a float32 plan, or in a
/// bfloat16 one where both GEMMs compute in bfloat16 and fc1's source is
/// stored in it.
std::vector<Fusion> find_ffn_fusions(const Graph& graph, const std::vector<size_t>& steps,
                                     const std::vector<Shape>& shapes,
                                     const std::vector<int>& readers, const CpuContext& context);

/// The kernel of one of them (a fusion of another kind: Backend's error).
std::unique_ptr<Kernel> make_fused_ffn(const Graph& graph, const Fusion& fusion,
                                       const std::vector<Shape>& shapes, CpuContext& context);

}  // namespace ravlt::runtime::cpu
