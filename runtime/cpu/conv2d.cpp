// Conv2d on oneDNN (depthwise 3x3 and 5x5 in float32: ours,
// depthwise_conv2d.h): channels-last activations, weights in the layout the
// primitive prefers (reordered once per model), bias and swish fused, GELU
// ours right after (output_activation.h: in place on a float32 output; a
// bfloat16 one is computed in float32 into the scratch first).
// In bfloat16 (CpuContext::compute_dtype) the source and weights are
// bfloat16, a float32 source narrowed first, the destination as the plan
// stores it, and oneDNN accumulates in float32 (the bias stays float32).
#include <optional>

#include "runtime/cpu/depthwise_conv2d.h"
#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/output_activation.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

class Conv2dKernel : public Kernel {
 public:
  explicit Conv2dKernel(const PrepareArgs& a) : context_(a.context), args_(a.node.name) {
    const Node& n = a.node;
    const Shape& x = a.input_shape(0);
    const Shape& w = a.input_shape(1);
    const Shape& y = a.output_shape();
    const int64_t groups = n.conv.groups;
    const DType compute_type = a.context.compute_dtype(a.graph, n);
    const dt compute = dnnl_type(compute_type);
    if (compute_type == DType::kFloat32 && input_dtype(a, 0) != DType::kFloat32) {
      throw Error("node '" + n.name + "': a float32 convolution of a bfloat16 source");
    }
    narrowed_ = NarrowedSource(input_dtype(a, 0), compute_type, element_count(x));
    activation_.emplace(n.activation, false, output_dtype(a), false, a.context.threads);
    output_count_ = element_count(y);
    const bool through_buffer = activation_->through_buffer();
    const dnnl::memory::desc src({x[0], x[3], x[1], x[2]}, compute, tag::nhwc);
    const dnnl::memory::desc dst({y[0], y[3], y[1], y[2]},
                                 through_buffer ? dt::f32 : dnnl_type(output_dtype(a)), tag::nhwc);
    const dnnl::memory::desc bias({w[0]}, dt::f32, tag::x);
    // Stored weights: (O, I/groups, KH, KW), as goihw when grouped.
    const dnnl::memory::desc user_w =
        groups == 1
            ? dnnl::memory::desc({w[0], w[1], w[2], w[3]}, dt::f32, tag::oihw)
            : dnnl::memory::desc({groups, w[0] / groups, w[1], w[2], w[3]}, dt::f32, tag::goihw);
    const dnnl::memory::desc any_w(user_w.dims(), compute, tag::any);
    const int64_t pad_bottom = (y[1] - 1) * n.conv.stride_h + n.conv.kernel_h - x[1] - n.conv.pad_h;
    const int64_t pad_right = (y[2] - 1) * n.conv.stride_w + n.conv.kernel_w - x[2] - n.conv.pad_w;
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::convolution_direct, src, any_w, bias, dst,
                                         {n.conv.stride_h, n.conv.stride_w},
                                         {n.conv.pad_h, n.conv.pad_w}, {pad_bottom, pad_right});
    dnnl::primitive_attr attr = base_attr();
    dnnl::post_ops ops;
    activation_->append_to(ops);
    attr.set_post_ops(ops);
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, context_.engine);
    primitive_ = dnnl::convolution_forward(pd);
    scratch_bytes_ = cache_lines(pd.scratchpad_desc().get_size());
    buffer_bytes_ = through_buffer ? cache_lines(static_cast<size_t>(output_count_) * 4) : 0;

    const void* weights = packed_weight(a, 1, user_w, pd.weights_desc());
    src_ = dnnl::memory(src, context_.engine, DNNL_MEMORY_NONE);
    dst_ = dnnl::memory(dst, context_.engine, DNNL_MEMORY_NONE);
    weights_ = dnnl::memory(pd.weights_desc(), context_.engine, const_cast<void*>(weights));
    bias_ = dnnl::memory(bias, context_.engine, DNNL_MEMORY_NONE);
    scratch_ = dnnl::memory(pd.scratchpad_desc(), context_.engine, DNNL_MEMORY_NONE);
    args_.add(DNNL_ARG_SRC, src_);
    args_.add(DNNL_ARG_WEIGHTS, weights_);
    args_.add(DNNL_ARG_BIAS, bias_);
    args_.add(DNNL_ARG_DST, dst_);
    args_.add(DNNL_ARG_SCRATCHPAD, scratch_);
  }

  size_t scratch_bytes() const override {
    return scratch_bytes_ + narrowed_.bytes() + buffer_bytes_;
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    src_.set_data_handle(narrowed_.source(convert_, in[0], scratch + scratch_bytes_));
    bias_.set_data_handle(const_cast<float*>(in[2].f32()));
    scratch_.set_data_handle(scratch);
    if (buffer_bytes_ == 0) {
      dst_.set_data_handle(output.data);
      args_.execute(primitive_, context_.stream);
      activation_->apply(output, output_count_);
      return;
    }
    auto* buffer = reinterpret_cast<float*>(scratch + scratch_bytes_ + narrowed_.bytes());
    dst_.set_data_handle(buffer);
    args_.execute(primitive_, context_.stream);
    activation_->apply_into(buffer, static_cast<uint16_t*>(output.data), output_count_);
  }

 private:
  CpuContext& context_;
  dnnl::convolution_forward primitive_;
  dnnl::memory src_, weights_, bias_, dst_, scratch_;
  PrimitiveArgs args_;
  std::optional<OutputActivation> activation_;
  int64_t output_count_ = 0;
  size_t scratch_bytes_ = 0;  // the primitive's, rounded to 64 bytes; the narrowed source after
  size_t buffer_bytes_ = 0;   // the float32 output before GELU (bfloat16 output), after those
  NarrowedSource narrowed_;
  const ConvertLoops& convert_ = convert_loops(active_isa());
};

}  // namespace

std::unique_ptr<Kernel> make_conv2d(const PrepareArgs& args) {
  if (std::unique_ptr<Kernel> ours = make_depthwise_conv2d(args)) return ours;
  return std::make_unique<Conv2dKernel>(args);
}

}  // namespace ravlt::runtime::cpu
