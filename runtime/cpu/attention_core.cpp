#include "runtime/cpu/attention_core.h"

namespace ravlt::runtime::cpu {

namespace isa_scalar {
const AttentionCore& core();
}
namespace isa_avx2 {
const AttentionCore& core();
}
namespace isa_avx512 {
const AttentionCore& core();
}

const AttentionCore& attention_core(Isa isa) {
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
