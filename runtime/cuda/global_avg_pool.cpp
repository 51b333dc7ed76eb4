// GlobalAvgPool on the GPU (global_avg_pool.cu).
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {

std::unique_ptr<Kernel> make_global_avg_pool(const PrepareArgs& args) {
  const DType storage = args.context.storage;
  const Shape& x = args.input_shape(0);  // (N, H, W, C)
  const int n = as_int(x[0], args.node), c = as_int(x[3], args.node);
  const int64_t hw = x[1] * x[2];
  return kernel(args, [=](const ConstView* in, View out, uint8_t*, cudaStream_t stream) {
    launch_global_avg_pool(storage, in[0].data, out.data, n, hw, c, stream);
  });
}

}  // namespace ravlt::runtime::cuda
