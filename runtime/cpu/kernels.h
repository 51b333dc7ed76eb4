// The CPU kernels, one factory per op kind (cpu_backend.cpp holds the
// table that maps runtime::Op to these).
#pragma once

#include <memory>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {

using PrepareArgs = PrepareArgsFor<CpuContext>;

using KernelFactory = std::unique_ptr<Kernel> (*)(const PrepareArgs&);

/// The kernel for args.node's op (the factory table of cpu_backend.cpp).
std::unique_ptr<Kernel> make_kernel(const PrepareArgs& args);

std::unique_ptr<Kernel> make_to_channels_last(const PrepareArgs& args);
std::unique_ptr<Kernel> make_conv2d(const PrepareArgs& args);
std::unique_ptr<Kernel> make_linear(const PrepareArgs& args);
std::unique_ptr<Kernel> make_layer_norm(const PrepareArgs& args);
std::unique_ptr<Kernel> make_channel_slice(const PrepareArgs& args);
std::unique_ptr<Kernel> make_rala_attention(const PrepareArgs& args);
std::unique_ptr<Kernel> make_softmax_attention(const PrepareArgs& args);
std::unique_ptr<Kernel> make_global_avg_pool(const PrepareArgs& args);

}  // namespace ravlt::runtime::cpu
