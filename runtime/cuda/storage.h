// How a CUDA session stores activations and weights (plain C++, shared by
// the .cu kernels and the host code).
#pragma once

namespace ravlt::runtime::cuda {

/// float32, float16 or bfloat16; kernels compute in float32 either way.
enum class Storage : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

}  // namespace ravlt::runtime::cuda
