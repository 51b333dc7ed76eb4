// ChannelSlice on the GPU (channel_slice.cu).
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {

std::unique_ptr<Kernel> make_channel_slice(const PrepareArgs& args) {
  const DType storage = args.context.storage;
  const Shape& x = args.input_shape(0);
  const int in_c = as_int(x.back(), args.node);
  const int64_t rows = element_count(x) / (in_c > 0 ? in_c : 1);
  const int begin = args.node.slice_begin, out_c = args.node.slice_end - args.node.slice_begin;
  return kernel(args, [=](const ConstView* in, View out, uint8_t*, cudaStream_t stream) {
    launch_channel_slice(storage, in[0].data, out.data, rows, in_c, begin, out_c, stream);
  });
}

}  // namespace ravlt::runtime::cuda
