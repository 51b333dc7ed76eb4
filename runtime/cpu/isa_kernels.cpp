#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu {

namespace isa_scalar {
const RalaLoops& rala_loops();
const SoftmaxLoops& softmax_loops();
const LayerNormLoops& layer_norm_loops();
const ConvertLoops& convert_loops();
const ActivationLoops& activation_loops();
const DepthwiseLoops& depthwise_loops();
}  // namespace isa_scalar
namespace isa_avx2 {
const RalaLoops& rala_loops();
const SoftmaxLoops& softmax_loops();
const LayerNormLoops& layer_norm_loops();
const ConvertLoops& convert_loops();
const ActivationLoops& activation_loops();
const DepthwiseLoops& depthwise_loops();
}  // namespace isa_avx2
namespace isa_avx512 {
const RalaLoops& rala_loops();
const SoftmaxLoops& softmax_loops();
const LayerNormLoops& layer_norm_loops();
const ConvertLoops& convert_loops();
const ActivationLoops& activation_loops();
const DepthwiseLoops& depthwise_loops();
}  // namespace isa_avx512

namespace {

// The table of one op for `isa`, from the three compiled for it.
template <typename Loops>
const Loops& pick(Isa isa, const Loops& (*scalar)(), const Loops& (*avx2)(),
                  const Loops& (*avx512)()) {
  switch (isa) {
    case Isa::kAvx512:
      return avx512();
    case Isa::kAvx2:
      return avx2();
    case Isa::kScalar:
      break;
  }
  return scalar();
}

}  // namespace

const RalaLoops& rala_loops(Isa isa) {
  return pick(isa, isa_scalar::rala_loops, isa_avx2::rala_loops, isa_avx512::rala_loops);
}

const SoftmaxLoops& softmax_loops(Isa isa) {
  return pick(isa, isa_scalar::softmax_loops, isa_avx2::softmax_loops, isa_avx512::softmax_loops);
}

const LayerNormLoops& layer_norm_loops(Isa isa) {
  return pick(isa, isa_scalar::layer_norm_loops, isa_avx2::layer_norm_loops,
              isa_avx512::layer_norm_loops);
}

const ConvertLoops& convert_loops(Isa isa) {
  return pick(isa, isa_scalar::convert_loops, isa_avx2::convert_loops, isa_avx512::convert_loops);
}

const ActivationLoops& activation_loops(Isa isa) {
  return pick(isa, isa_scalar::activation_loops, isa_avx2::activation_loops,
              isa_avx512::activation_loops);
}

const DepthwiseLoops& depthwise_loops(Isa isa) {
  return pick(isa, isa_scalar::depthwise_loops, isa_avx2::depthwise_loops,
              isa_avx512::depthwise_loops);
}

}  // namespace ravlt::runtime::cpu
