// LayerNorm's inner loops compiled for AVX-512 F/VL/BW/DQ + FMA, 512-bit vectors: CMake gives every
// *_avx512.cpp these flags (runtime/CMakeLists.txt). The loops themselves,
// shared by every instruction set, are in layer_norm_loops.inc.
#include <immintrin.h>

#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_avx512 {
#include "runtime/cpu/vector_math.inc"
// (math first: the loops use it)
#include "runtime/cpu/layer_norm_loops.inc"

const LayerNormLoops& layer_norm_loops() {
  static const LayerNormLoops kLoops = {layer_norm, layer_norm_bf16_out};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_avx512
