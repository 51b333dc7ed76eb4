// Softmax attention on oneDNN's bfloat16 GEMMs (softmax_attention_blocks.cpp).
#pragma once

#include <memory>

#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {

/// The kernel for a softmax attention node whose operands are bfloat16,
/// where oneDNN runs bfloat16 matmuls on GEMM units of this CPU (AMX or
/// AVX512_BF16); nullptr otherwise (the float32 kernel takes the node).
std::unique_ptr<Kernel> make_softmax_attention_blocks(const PrepareArgs& args);

}  // namespace ravlt::runtime::cpu
