// The attention inner loops compiled for scalar (flags in runtime/CMakeLists.txt).
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_scalar {
#include "runtime/cpu/isa_kernels.inc"
}  // namespace ravlt::runtime::cpu::isa_scalar
