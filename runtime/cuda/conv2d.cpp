// Conv2d on the GPU. Dense convolutions (groups 1) become a GEMM through
// cuBLASLt: the input unrolled by im2col (skipped for a 1x1, stride-1,
// unpadded one, whose input already is the matrix) times the weights in
// [co][kh][kw][ci] order, bias as the epilogue, then our activation (erf
// GELU, swish). Depthwise convolutions, memory-bound, run the kernel of
// depthwise_conv2d.cu, other grouped ones the direct kernel of conv2d.cu;
// both read weights in [kh][kw][ci][co] order.
#include "runtime/cuda/gemm.h"
#include "runtime/cuda/launch_kernel.h"

namespace ravlt::runtime::cuda {
namespace {

class ConvGemmKernel : public Kernel {
 public:
  ConvGemmKernel(const PrepareArgs& args, const ConvParams& p, bool unrolled)
      : context_(args.context),
        node_(args.node.name),
        p_(p),
        unrolled_(unrolled),
        rows_(static_cast<int64_t>(p.n) * p.out_h * p.out_w),
        depth_(static_cast<int64_t>(p.kernel_h) * p.kernel_w * p.in_c),
        gemm_(args.context, args.node.name, rows_, p.out_c, depth_) {
    const size_t element = dtype_size(context_.storage);
    col_bytes_ = unrolled_ ? (static_cast<size_t>(rows_ * depth_) * element + 255) / 256 * 256 : 0;
  }

  size_t scratch_bytes() const override { return col_bytes_ + Gemm::kScratchBytes; }

  void run(const ConstView* inputs, View output, uint8_t* scratch) override {
    const void* matrix = inputs[0].data;
    if (unrolled_) {
      launch_im2col(context_.storage, p_, inputs[0].data, scratch, context_.stream);
      context_.note(cudaGetLastError(), node_.c_str());
      matrix = scratch;
    }
    gemm_.run(inputs[1].data, matrix, inputs[2].data, nullptr, output.data, scratch + col_bytes_);
    if (p_.act != Act::kNone) {
      launch_activation(context_.storage, output.data, rows_ * p_.out_c, p_.act, nullptr,
                        context_.stream);
      context_.note(cudaGetLastError(), node_.c_str());
    }
  }

 private:
  CudaContext& context_;
  std::string node_;
  ConvParams p_;
  bool unrolled_;
  int64_t rows_, depth_;
  size_t col_bytes_ = 0;
  Gemm gemm_;
};

}  // namespace

std::unique_ptr<Kernel> make_conv2d(const PrepareArgs& args) {
  const DType storage = args.context.storage;
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
  if (p.groups == 1) {
    const bool pointwise = p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 &&
                           p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0;
    if (!pointwise && !im2col_handles(p)) {
      throw Error("node '" + node.name +
                  "': the convolution's im2col matrix is beyond the CUDA kernels' 32-bit sizes");
    }
    args.context.constant_layouts[node.inputs[1]] = WeightLayout::kConvOhwi;
    return std::make_unique<ConvGemmKernel>(args, p, !pointwise);
  }
  args.context.constant_layouts[node.inputs[1]] = WeightLayout::kConvHwio;
  if (depthwise_conv2d_handles(p)) {
    return kernel(args, [=](const ConstView* in, View out, uint8_t*, cudaStream_t stream) {
      launch_depthwise_conv2d(storage, p, in[0].data, in[1].data, in[2].data, out.data, stream);
    });
  }
  return kernel(args, [=](const ConstView* in, View out, uint8_t*, cudaStream_t stream) {
    launch_conv2d(storage, p, in[0].data, in[1].data, in[2].data, out.data, stream);
  });
}

}  // namespace ravlt::runtime::cuda
