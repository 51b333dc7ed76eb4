// LayerNorm on the GPU (layer_norm.cu): statistics in float32.
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {

std::unique_ptr<Kernel> make_layer_norm(const PrepareArgs& args) {
  const DType storage = args.context.storage;
  const Shape& x = args.input_shape(0);
  const int c = as_int(x.back(), args.node);
  const int64_t rows = element_count(x) / (c > 0 ? c : 1);
  const float epsilon = args.node.epsilon;
  return kernel(args, [=](const ConstView* in, View out, uint8_t*, cudaStream_t stream) {
    launch_layer_norm(storage, in[0].data, in[1].data, in[2].data, out.data, rows, c, epsilon,
                      stream);
  });
}

}  // namespace ravlt::runtime::cuda
