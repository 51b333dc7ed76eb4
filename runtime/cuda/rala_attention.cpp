// RALA on the GPU (rala_attention.cu): passes over chunks of the tokens.
#include "runtime/cuda/attention_params.h"
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {

std::unique_ptr<Kernel> make_rala_attention(const PrepareArgs& args) {
  const DType storage = args.context.storage;
  const AttentionParams p = attention_params(args);
  return kernel(
      args,
      [=](const ConstView* in, View out, uint8_t* scratch, cudaStream_t stream) {
        launch_rala_attention(storage, p, in[0].data, in[1].data,
                              static_cast<const float*>(in[2].data), out.data, scratch, stream);
      },
      rala_scratch_bytes(p));
}

}  // namespace ravlt::runtime::cuda
