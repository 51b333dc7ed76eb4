// LayerNorm's inner loops compiled for AVX2 + FMA: CMake gives every
// *_avx2.cpp these flags (runtime/CMakeLists.txt). The loops themselves,
// shared by every instruction set, are in layer_norm_loops.inc.
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_avx2 {
#include "runtime/cpu/vector_math.inc"
// (math first: the loops use it)
#include "runtime/cpu/layer_norm_loops.inc"

const LayerNormLoops& layer_norm_loops() {
  static const LayerNormLoops kLoops = {layer_norm, layer_norm_bf16_out};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_avx2
