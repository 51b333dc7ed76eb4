// The depthwise convolutions' rows compiled for AVX2 + FMA, 256-bit vectors: CMake gives every
// *_avx2.cpp these flags (runtime/CMakeLists.txt). The loops themselves, shared by every
// instruction set, are in depthwise_loops.inc.
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_avx2 {
#include "runtime/cpu/vector_math.inc"
// (math first: the loops use it)
#include "runtime/cpu/depthwise_loops.inc"

const DepthwiseLoops& depthwise_loops() {
  static const DepthwiseLoops kLoops = {depthwise3x3_row,          depthwise5x5_row,
                                        depthwise3x3_row_bf16,     depthwise5x5_row_bf16_out,
                                        depthwise3x3_two_rows,     depthwise3x3_two_rows_bf16,
                                        depthwise3x3_row_bf16_out, depthwise3x3_two_rows_bf16_out};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_avx2
