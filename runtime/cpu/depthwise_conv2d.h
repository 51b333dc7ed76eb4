// Depthwise 3x3 and 5x5 float32 convolutions (pos, lepe, the unfused FFN
// convolutions of RAVLT) on our own register-blocked rows instead of
// oneDNN's: see depthwise_conv2d.cpp for what it measured.
#pragma once

#include <memory>

#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {

/// Our kernel for a Conv2d node that is depthwise (a group per channel, one
/// output per group), square 3x3 or 5x5, stride 1, padded by half its size,
/// without activation, float32 in and out; nullptr for any other node.
std::unique_ptr<Kernel> make_depthwise_conv2d(const PrepareArgs& args);

}  // namespace ravlt::runtime::cpu
