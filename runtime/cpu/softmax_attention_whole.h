// Softmax attention in bfloat16 over whole rows of scores on oneDNN's
// batched matmuls, for few tokens (softmax_attention_whole.cpp).
#pragma once

#include <memory>

#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {

/// Most tokens per image for which softmax attention stores every head's
/// whole L x L scores: at most 256 x 256 floats (256 KB) per head. Past
/// that the key-block kernels win: at L = 576 (RAVLT-T's stage 3 at 384 x
/// 384, 5 MB of scores per image, beyond the second-level cache) whole rows
/// measured 1.9-2.3 ms per node against 1.6-1.8 (AMD Zen 4, bfloat16).
inline constexpr int64_t kWholeRowsMaxTokens = 256;

/// The kernel for a softmax attention node of at most kWholeRowsMaxTokens
/// tokens whose operands are bfloat16, at the AVX-512 path, where oneDNN
/// runs bfloat16 matmuls on fast units (as the blocks kernel); nullptr
/// otherwise.
std::unique_ptr<Kernel> make_softmax_attention_whole(const PrepareArgs& args);

}  // namespace ravlt::runtime::cpu
