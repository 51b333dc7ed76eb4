// ToChannelsLast on the GPU (transpose.cu).
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {

std::unique_ptr<Kernel> make_to_channels_last(const PrepareArgs& args) {
  const DType storage = args.context.storage;
  const Shape& s = args.input_shape(0);  // (N, C, H, W)
  const int n = as_int(s[0], args.node), c = as_int(s[1], args.node), h = as_int(s[2], args.node),
            w = as_int(s[3], args.node);
  if (!transpose_handles(n, c, static_cast<int64_t>(h) * w)) {
    throw Error("node '" + args.node.name + "': the map is beyond the CUDA kernels' 32-bit sizes");
  }
  return kernel(args, [=](const ConstView* in, View out, uint8_t*, cudaStream_t stream) {
    launch_transpose(storage, in[0].data, out.data, n, c, h * w, stream);
  });
}

}  // namespace ravlt::runtime::cuda
