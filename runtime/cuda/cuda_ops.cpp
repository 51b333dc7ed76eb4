// The CUDA Kernel objects of the single-launch ops (Linear: linear.cpp,
// Conv2d: conv2d.cpp): shapes checked and launch parameters derived in
// prepare, one launch in run.
#include "ravlt/error.h"
#include "runtime/cuda/cuda_context.h"
#include "runtime/cuda/launch_kernel.h"
#include "runtime/cuda/launchers.h"

namespace ravlt::runtime::cuda {

std::unique_ptr<Kernel> make_to_channels_last(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const Shape& s = args.input_shape(0);  // (N, C, H, W)
  const int n = as_int(s[0], args.node), c = as_int(s[1], args.node), h = as_int(s[2], args.node),
            w = as_int(s[3], args.node);
  return kernel(args, [=](const float* const* in, float* out, uint8_t*, cudaStream_t stream) {
    launch_to_channels_last(storage, in[0], out, n, c, h, w, stream);
  });
}

std::unique_ptr<Kernel> make_layer_norm(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const Shape& x = args.input_shape(0);
  const int c = as_int(x.back(), args.node);
  const int64_t rows = element_count(x) / (c > 0 ? c : 1);
  const float epsilon = args.node.epsilon;
  return kernel(args, [=](const float* const* in, float* out, uint8_t*, cudaStream_t stream) {
    launch_layer_norm(storage, in[0], in[1], in[2], out, rows, c, epsilon, stream);
  });
}

std::unique_ptr<Kernel> make_channel_slice(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const Shape& x = args.input_shape(0);
  const int in_c = as_int(x.back(), args.node);
  const int64_t rows = element_count(x) / (in_c > 0 ? in_c : 1);
  const int begin = args.node.slice_begin, out_c = args.node.slice_end - args.node.slice_begin;
  return kernel(args, [=](const float* const* in, float* out, uint8_t*, cudaStream_t stream) {
    launch_channel_slice(storage, in[0], out, rows, in_c, begin, out_c, stream);
  });
}

namespace {

AttentionParams attention_params(const PrepareArgs& args) {
  const Node& node = args.node;
  // The RoPE angles stay float32 whatever the storage: positions times an
  // angle rounded to 16 bits would turn far tokens visibly wrong.
  args.context.constant_storage[node.inputs[2]] = Storage::kF32;
  const Shape& qkvo = args.input_shape(0);  // (N, H, W, 4C)
  if (node.head_dim <= 0 || node.head_dim % 2 != 0 || node.head_dim > 512) {
    throw Error("node '" + node.name + "': the CUDA attention kernels take an even head_dim of " +
                "at most 512, not " + std::to_string(node.head_dim));
  }
  return AttentionParams{as_int(qkvo[0], node), as_int(qkvo[1], node), as_int(qkvo[2], node),
                         node.heads, node.head_dim};
}

}  // namespace

std::unique_ptr<Kernel> make_rala_attention(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const AttentionParams p = attention_params(args);
  return kernel(
      args,
      [=](const float* const* in, float* out, uint8_t* scratch, cudaStream_t stream) {
        launch_rala_attention(storage, p, in[0], in[1], in[2], out, scratch, stream);
      },
      rala_scratch_bytes(p));
}

std::unique_ptr<Kernel> make_softmax_attention(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const AttentionParams p = attention_params(args);
  return kernel(args, [=](const float* const* in, float* out, uint8_t*, cudaStream_t stream) {
    launch_softmax_attention(storage, p, in[0], in[1], in[2], out, stream);
  });
}

std::unique_ptr<Kernel> make_global_avg_pool(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const Shape& x = args.input_shape(0);  // (N, H, W, C)
  const int n = as_int(x[0], args.node), c = as_int(x[3], args.node);
  const int64_t hw = x[1] * x[2];
  return kernel(args, [=](const float* const* in, float* out, uint8_t*, cudaStream_t stream) {
    launch_global_avg_pool(storage, in[0], out, n, hw, c, stream);
  });
}

}  // namespace ravlt::runtime::cuda
