#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu {

namespace isa_scalar {
const RalaLoops& rala_loops();
const SoftmaxLoops& softmax_loops();
const LayerNormLoops& layer_norm_loops();
}  // namespace isa_scalar
namespace isa_avx2 {
const RalaLoops& rala_loops();
const SoftmaxLoops& softmax_loops();
const LayerNormLoops& layer_norm_loops();
}  // namespace isa_avx2
namespace isa_avx512 {
const RalaLoops& rala_loops();
const SoftmaxLoops& softmax_loops();
const LayerNormLoops& layer_norm_loops();
}  // namespace isa_avx512

const RalaLoops& rala_loops(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return isa_avx512::rala_loops();
    case Isa::kAvx2:
      return isa_avx2::rala_loops();
    case Isa::kScalar:
      break;
  }
  return isa_scalar::rala_loops();
}

const SoftmaxLoops& softmax_loops(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return isa_avx512::softmax_loops();
    case Isa::kAvx2:
      return isa_avx2::softmax_loops();
    case Isa::kScalar:
      break;
  }
  return isa_scalar::softmax_loops();
}

const LayerNormLoops& layer_norm_loops(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return isa_avx512::layer_norm_loops();
    case Isa::kAvx2:
      return isa_avx2::layer_norm_loops();
    case Isa::kScalar:
      break;
  }
  return isa_scalar::layer_norm_loops();
}

}  // namespace ravlt::runtime::cpu
