// The attention inner loops compiled for avx2 (flags in runtime/CMakeLists.txt).
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu::isa_avx2 {
#include "runtime/cpu/isa_kernels.inc"
}  // namespace ravlt::runtime::cpu::isa_avx2
