#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu {

namespace isa_scalar {
const IsaKernels& core();
}
namespace isa_avx2 {
const IsaKernels& core();
}
namespace isa_avx512 {
const IsaKernels& core();
}

const IsaKernels& isa_kernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return isa_avx512::core();
    case Isa::kAvx2:
      return isa_avx2::core();
    case Isa::kScalar:
      break;
  }
  return isa_scalar::core();
}

}  // namespace ravlt::runtime::cpu
