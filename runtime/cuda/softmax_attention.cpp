// Softmax attention on the GPU: online softmax, on tensor cores for 16-bit
// storage at enough queries (softmax_attention_mma.cu), else on CUDA cores
// (softmax_attention.cu), tiled over rotated keys kept in scratch where
// head_dim <= 64.
#include "runtime/cuda/attention_params.h"
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {

std::unique_ptr<Kernel> make_softmax_attention(const PrepareArgs& args) {
  const DType storage = args.context.storage;
  const AttentionParams p = attention_params(args);
  return kernel(
      args,
      [=](const ConstView* in, View out, uint8_t* scratch, cudaStream_t stream) {
        launch_softmax_attention(storage, p, in[0].data, in[1].data,
                                 static_cast<const float*>(in[2].data), out.data, scratch, stream);
      },
      softmax_scratch_bytes(storage, p));
}

}  // namespace ravlt::runtime::cuda
