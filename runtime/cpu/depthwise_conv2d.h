// Depthwise 3x3 and 5x5 convolutions (pos, lepe, the unfused FFN
// convolutions of RAVLT), float32 or bfloat16, on our own register-blocked
// rows instead of oneDNN's, and lepe fused with the channel slice that
// feeds it (v read in place from the qkvo rows): depthwise_conv2d.cpp.
#pragma once

#include <memory>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cpu/cpu_context.h"
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {

/// Our kernel for a Conv2d node that is depthwise (a group per channel, one
/// output per group), square 3x3 or 5x5, stride 1, padded by half its size,
/// without activation, float32 in and out (or bfloat16 in and out where it
/// computes in bfloat16), on AVX-512 at channel counts where ours is the
/// faster; nullptr for any other node.
std::unique_ptr<Kernel> make_depthwise_conv2d(const PrepareArgs& args);

/// Fusion::kind of a ChannelSlice read only by such a convolution.
inline constexpr const char* kSliceConvKind = "ChannelSlice+Conv2d";

/// Those chains among a plan's `steps` (Backend::fuse) whose types ours reads.
std::vector<Fusion> find_slice_conv_fusions(const Graph& graph, const std::vector<size_t>& steps,
                                            const std::vector<Shape>& shapes,
                                            const std::vector<int>& readers,
                                            const CpuContext& context);

/// The kernel of one of them: the convolution reading its channels in place.
std::unique_ptr<Kernel> make_slice_conv(const Graph& graph, const Fusion& fusion,
                                        const std::vector<Shape>& shapes, CpuContext& context);

}  // namespace ravlt::runtime::cpu
