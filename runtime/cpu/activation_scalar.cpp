// In-place activations compiled for the baseline x86-64 instruction set (SSE2, no FMA contraction):
// CMake gives every *_scalar.cpp these flags (runtime/CMakeLists.txt). The loops themselves, shared
// by every instruction set, are in activation_loops.inc.
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_scalar {
#include "runtime/cpu/vector_math.inc"
// (math first: the loops use it)
#include "runtime/cpu/activation_loops.inc"

const ActivationLoops& activation_loops() {
  static const ActivationLoops kLoops = {gelu_f32, gelu_f32_to_bf16};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_scalar
