// Element type conversions compiled for the baseline x86-64 instruction set (no FMA contraction):
// CMake gives every
// *_scalar.cpp these flags (runtime/CMakeLists.txt). The loops themselves,
// shared by every instruction set, are at the end of vector_math.inc.
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_scalar {
#include "runtime/cpu/vector_math.inc"

const ConvertLoops& convert_loops() {
  static const ConvertLoops kLoops = {bf16_row_to_f32, f32_row_to_bf16, bf16_rows_to_f32,
                                      f32_rows_to_bf16};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_scalar
