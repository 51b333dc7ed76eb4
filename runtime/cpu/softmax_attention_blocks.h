// Softmax attention on oneDNN's bfloat16 GEMMs (softmax_attention_blocks.cpp).
#pragma once

#include <memory>

#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {

/// The kernel for a softmax attention node whose operands are bfloat16,
/// where oneDNN runs bfloat16 matmuls on GEMM units of this CPU (AMX or
/// AVX512_BF16); nullptr otherwise (the float32 kernel takes the node).
std::unique_ptr<Kernel> make_softmax_attention_blocks(const PrepareArgs& args);

/// Whether a bfloat16 matmul runs on units that outrun float32: AMX tiles,
/// or AVX512_BF16 whose vdpbf16ps does more multiply-adds per cycle than
/// the float32 FMA (bf16_dot_outruns_fma(): AMD Zen 4 and later).
bool matmul_on_fast_bf16_units(const dnnl::matmul::primitive_desc& pd);

}  // namespace ravlt::runtime::cpu
