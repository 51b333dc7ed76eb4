// The attention inner loops compiled for scalar (flags in runtime/CMakeLists.txt).
#include "runtime/cpu/attention_core.h"

namespace ravlt::runtime::cpu::isa_scalar {
#include "runtime/cpu/attention_isa.inc"
}  // namespace ravlt::runtime::cpu::isa_scalar
