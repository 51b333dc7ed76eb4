// The CUDA Kernel objects of every op but Linear (linear.cpp): shapes
// checked and launch parameters derived in prepare, one launch in run.
#include "ravlt/error.h"
#include "runtime/cuda/cuda_context.h"
#include "runtime/cuda/launchers.h"

namespace ravlt::runtime::cuda {
namespace {

int as_int(int64_t v, const Node& node) {
  if (v < 0 || v > (int64_t{1} << 31) - 1) {
    throw Error("node '" + node.name + "': size " + std::to_string(v) +
                " is beyond the CUDA kernels' 32-bit sizes");
  }
  return static_cast<int>(v);
}

// A kernel that launches `launch(inputs, output, scratch, stream)`.
template <typename Launch>
class LaunchKernel : public Kernel {
 public:
  LaunchKernel(CudaContext& context, const Node& node, Launch launch, size_t scratch = 0)
      : context_(context), node_(node.name), launch_(launch), scratch_(scratch) {}
  size_t scratch_bytes() const override { return scratch_; }
  void run(const float* const* inputs, float* output, uint8_t* scratch) override {
    launch_(inputs, output, scratch, context_.stream);
    context_.note(cudaGetLastError(), node_.c_str());
  }

 private:
  CudaContext& context_;
  std::string node_;
  Launch launch_;
  size_t scratch_;
};

template <typename Launch>
std::unique_ptr<Kernel> kernel(const PrepareArgs& args, Launch launch, size_t scratch = 0) {
  return std::make_unique<LaunchKernel<Launch>>(args.context, args.node, launch, scratch);
}

Act act_of(Activation a) {
  return static_cast<Act>(static_cast<int>(a));
}

}  // namespace

std::unique_ptr<Kernel> make_to_channels_last(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const Shape& s = args.input_shape(0);  // (N, C, H, W)
  const int n = as_int(s[0], args.node), c = as_int(s[1], args.node), h = as_int(s[2], args.node),
            w = as_int(s[3], args.node);
  return kernel(args, [=](const float* const* in, float* out, uint8_t*, cudaStream_t stream) {
    launch_to_channels_last(storage, in[0], out, n, c, h, w, stream);
  });
}

std::unique_ptr<Kernel> make_conv2d(const PrepareArgs& args) {
  const Storage storage = args.context.storage;
  const Node& node = args.node;
  const Shape& x = args.input_shape(0);  // (N, H, W, Ci)
  const Shape& y = args.output_shape();  // (N, OH, OW, Co)
  ConvParams p{};
  p.n = as_int(x[0], node);
  p.in_h = as_int(x[1], node);
  p.in_w = as_int(x[2], node);
  p.in_c = as_int(x[3], node);
  p.out_h = as_int(y[1], node);
  p.out_w = as_int(y[2], node);
  p.out_c = as_int(y[3], node);
  p.kernel_h = node.conv.kernel_h;
  p.kernel_w = node.conv.kernel_w;
  p.stride_h = node.conv.stride_h;
  p.stride_w = node.conv.stride_w;
  p.pad_h = node.conv.pad_h;
  p.pad_w = node.conv.pad_w;
  p.groups = node.conv.groups;
  p.act = act_of(node.activation);
  args.context.constant_layouts[node.inputs[1]] = WeightLayout::kConvHwio;
  return kernel(args, [=](const float* const* in, float* out, uint8_t*, cudaStream_t stream) {
    launch_conv2d(storage, p, in[0], in[1], in[2], out, stream);
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
