// LayerNorm's inner loops compiled for the baseline x86-64 instruction set (no FMA contraction):
// CMake gives every
// *_scalar.cpp these flags (runtime/CMakeLists.txt). The loops themselves,
// shared by every instruction set, are in layer_norm_loops.inc.
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_scalar {
#include "runtime/cpu/vector_math.inc"
// (math first: the loops use it)
#include "runtime/cpu/layer_norm_loops.inc"

const LayerNormLoops& layer_norm_loops() {
  static const LayerNormLoops kLoops = {layer_norm, layer_norm_bf16_out};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_scalar
