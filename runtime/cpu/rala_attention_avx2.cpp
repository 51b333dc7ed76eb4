// RALA's inner loops compiled for AVX2 + FMA: CMake gives every
// *_avx2.cpp these flags (runtime/CMakeLists.txt). The loops themselves,
// shared by every instruction set, are in rala_attention_loops.inc.
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_avx2 {
#include "runtime/cpu/vector_math.inc"
// (math first: the loops use it)
#include "runtime/cpu/rala_attention_loops.inc"

const RalaLoops& rala_loops() {
  static const RalaLoops kLoops = {rala_q_sum<float>,     rala_kv_sum<float>,
                                   rala_output<float>,    rala_q_sum<uint16_t>,
                                   rala_kv_sum<uint16_t>, rala_output<uint16_t>};
  return kLoops;
}

}  // namespace ravlt::runtime::cpu::isa_avx2
