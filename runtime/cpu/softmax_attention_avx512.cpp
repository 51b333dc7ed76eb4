// Softmax attention's inner loops compiled for AVX-512 F/VL/BW/DQ + FMA, 512-bit vectors: CMake
// gives every
// *_avx512.cpp these flags (runtime/CMakeLists.txt). The loops themselves,
// shared by every instruction set, are in softmax_attention_loops.inc.
#include <immintrin.h>

#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_avx512 {
#include "runtime/cpu/vector_math.inc"
// (math first: the loops use it)
#include "runtime/cpu/softmax_attention_loops.inc"

const SoftmaxLoops& softmax_loops() {
  static const SoftmaxLoops kLoops = {prepare_keys_values, softmax_rows, prepare_keys_values_bf16,
                                      rotate_rows_bf16, softmax_block_bf16};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_avx512
