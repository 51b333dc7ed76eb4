// The attention inner loops compiled for avx2 (flags in runtime/CMakeLists.txt).
#include "runtime/cpu/attention_core.h"

namespace ravlt::runtime::cpu::isa_avx2 {
#include "runtime/cpu/attention_isa.inc"
}  // namespace ravlt::runtime::cpu::isa_avx2
