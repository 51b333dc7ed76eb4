// Element type conversions compiled for AVX-512 F/VL/BW/DQ + FMA, 512-bit vectors: CMake gives
// every
// *_avx512.cpp these flags (runtime/CMakeLists.txt). The loops themselves,
// shared by every instruction set, are at the end of vector_math.inc.
#include <immintrin.h>

#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_avx512 {
#include "runtime/cpu/vector_math.inc"

const ConvertLoops& convert_loops() {
  static const ConvertLoops kLoops = {bf16_row_to_f32, f32_row_to_bf16, bf16_rows_to_f32,
                                      f32_rows_to_bf16};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_avx512
