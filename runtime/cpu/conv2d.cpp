// Conv2d on oneDNN (depthwise 3x3 and 5x5 in float32: ours,
// depthwise_conv2d.h): channels-last activations, weights in the layout the
// primitive prefers (reordered once per model), bias and swish fused, GELU
// ours right after (output_activation.h: in place on a float32 output; a
// bfloat16 one is computed in float32 into the scratch first).
// In bfloat16 (CpuContext::compute_dtype) the source and weights are
// bfloat16, a float32 source narrowed first, the destination as the plan
// stores it, and oneDNN accumulates in float32 (the bias stays float32).
//
// By bands of output rows: where GELU is ours on a bfloat16 output (the
// convolution writes float32 into a buffer, GELU rounds it into the
// output) and one image's float32 output is more than four times
// CpuContext::conv_band_bytes (2 MB; RAVLT's stem at detection sizes: 32
// channels at 400 x 608, 31 MB an image at 800 x 1216), the convolution
// runs on one band of at most conv_band_bytes of rows at a time (its input
// rows, their halo and the image's own padding, as a smaller image) into a
// buffer that stays in the caches for GELU, rather than the whole buffer
// going to memory and coming back. A band's primitive is one of at most
// three shapes (the first band, with the top padding; the middle ones; the
// last), created once. RAVLT-T's backbone at 800 x 1216 in bfloat16
// (Emerald Rapids, 2 threads, alternated): the stem's three such
// convolutions 0.72x the time (18.2 -> 13.2 ms a run, 7 rounds). Not
// taken: float32 (GELU in place over the output, no buffer), where bands
// measured 1.04x as slow at 800 x 1216; and smaller outputs (RAVLT-B's
// stem at 224 x 224, 2.4 MB an image: two bands 1.13x as slow in bfloat16),
// which stay in the caches anyway.
#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include "runtime/cpu/depthwise_conv2d.h"
#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/output_activation.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

// Rows of one image: input rows [in_row, in_row + in_rows) with pad_top and
// pad_bottom rows of zeros around them give output rows [out_row, out_row +
// out_rows).
struct Band {
  int64_t in_row = 0, in_rows = 0, pad_top = 0, pad_bottom = 0, out_row = 0, out_rows = 0;
  size_t part = 0;  // the primitive of its shape
};

// Output rows [0, out_h) in bands of at most `rows`, for a kernel of height
// kh, stride sh and top padding ph over in_h input rows.
std::vector<Band> bands_of(int64_t out_h, int64_t rows, int64_t in_h, int64_t kh, int64_t sh,
                           int64_t ph) {
  std::vector<Band> bands;
  for (int64_t r0 = 0; r0 < out_h; r0 += rows) {
    Band b;
    b.out_row = r0;
    b.out_rows = std::min(rows, out_h - r0);
    const int64_t first = r0 * sh - ph;               // the band's first input row (may be padding)
    const int64_t span = (b.out_rows - 1) * sh + kh;  // input rows it reads, padding included
    b.pad_top = std::max<int64_t>(0, -first);
    b.in_row = std::max<int64_t>(0, first);
    b.in_rows = std::min(span - b.pad_top, in_h - b.in_row);
    b.pad_bottom = span - b.pad_top - b.in_rows;
    bands.push_back(b);
  }
  return bands;
}

class Conv2dKernel : public Kernel {
 public:
  explicit Conv2dKernel(const PrepareArgs& a) : context_(a.context) {
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
    const dt out_type = through_buffer ? dt::f32 : dnnl_type(output_dtype(a));
    const dnnl::memory::desc bias({w[0]}, dt::f32, tag::x);
    // Stored weights: (O, I/groups, KH, KW), as goihw when grouped.
    const dnnl::memory::desc user_w =
        groups == 1
            ? dnnl::memory::desc({w[0], w[1], w[2], w[3]}, dt::f32, tag::oihw)
            : dnnl::memory::desc({groups, w[0] / groups, w[1], w[2], w[3]}, dt::f32, tag::goihw);
    const dnnl::memory::desc any_w(user_w.dims(), compute, tag::any);
    const int64_t pad_right = (y[2] - 1) * n.conv.stride_w + n.conv.kernel_w - x[2] - n.conv.pad_w;

    // The whole batch as one image per call, or bands of rows per image.
    in_row_elements_ = x[2] * x[3];
    out_row_elements_ = y[2] * y[3];
    in_h_ = x[1];
    out_h_ = y[1];
    const size_t image_out_bytes = static_cast<size_t>(y[1] * out_row_elements_) * 4;
    const size_t band_bytes = a.context.conv_band_bytes;
    if (through_buffer && groups == 1 && y[1] > 1 && image_out_bytes > 4 * band_bytes) {
      // As many rows as fit band_bytes, evened out over the bands.
      const int64_t most = std::max<int64_t>(
          1, static_cast<int64_t>(band_bytes / (static_cast<size_t>(out_row_elements_) * 4)));
      const int64_t count = (y[1] + most - 1) / most;
      bands_ = bands_of(y[1], (y[1] + count - 1) / count, x[1], n.conv.kernel_h, n.conv.stride_h,
                        n.conv.pad_h);
    } else {
      Band whole;
      whole.in_rows = x[1];
      whole.pad_top = n.conv.pad_h;
      whole.pad_bottom = (y[1] - 1) * n.conv.stride_h + n.conv.kernel_h - x[1] - n.conv.pad_h;
      whole.out_rows = y[1];
      bands_ = {whole};
    }
    const int64_t images = banded() ? 1 : x[0];
    std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, size_t> shapes;
    for (Band& b : bands_) {
      const auto key = std::make_tuple(b.in_rows, b.pad_top, b.pad_bottom, b.out_rows);
      const auto found = shapes.find(key);
      if (found != shapes.end()) {
        b.part = found->second;
        continue;
      }
      b.part = parts_.size();
      shapes.emplace(key, b.part);
      const dnnl::memory::desc src({images, x[3], b.in_rows, x[2]}, compute, tag::nhwc);
      const dnnl::memory::desc dst({images, y[3], b.out_rows, y[2]}, out_type, tag::nhwc);
      dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                           dnnl::algorithm::convolution_direct, src, any_w, bias,
                                           dst, {n.conv.stride_h, n.conv.stride_w},
                                           {b.pad_top, n.conv.pad_w}, {b.pad_bottom, pad_right});
      dnnl::primitive_attr attr = base_attr();
      dnnl::post_ops ops;
      activation_->append_to(ops);
      attr.set_post_ops(ops);
      const dnnl::convolution_forward::primitive_desc pd(desc, attr, context_.engine);
      const void* weights = packed_weight(a, 1, user_w, pd.weights_desc());
      parts_.emplace_back(pd, weights, context_.engine, n.name);
      scratch_bytes_ = std::max(scratch_bytes_, cache_lines(pd.scratchpad_desc().get_size()));
    }
    int64_t buffer_rows = 0;
    for (const Band& b : bands_) buffer_rows = std::max(buffer_rows, b.out_rows);
    buffer_bytes_ =
        through_buffer
            ? cache_lines(static_cast<size_t>(images * buffer_rows * out_row_elements_) * 4)
            : 0;
    source_bytes_ = dtype_size(compute_type);
    output_bytes_ = dtype_size(output_dtype(a));
    images_ = x[0];
  }

  size_t scratch_bytes() const override {
    return scratch_bytes_ + narrowed_.bytes() + buffer_bytes_;
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    auto* source =
        static_cast<uint8_t*>(narrowed_.source(convert_, in[0], scratch + scratch_bytes_));
    auto* buffer = reinterpret_cast<float*>(scratch + scratch_bytes_ + narrowed_.bytes());
    auto* out = static_cast<uint8_t*>(output.data);
    const int64_t images = banded() ? images_ : 1;
    for (int64_t image = 0; image < images; ++image) {
      for (const Band& b : bands_) {
        Part& part = parts_[b.part];
        const int64_t in_row = image * in_h_ + b.in_row, out_row = image * out_h_ + b.out_row;
        uint8_t* dst = out + static_cast<size_t>(out_row * out_row_elements_) * output_bytes_;
        part.src.set_data_handle(source +
                                 static_cast<size_t>(in_row * in_row_elements_) * source_bytes_);
        part.bias.set_data_handle(const_cast<float*>(in[2].f32()));
        part.scratch.set_data_handle(scratch);
        part.dst.set_data_handle(buffer_bytes_ > 0 ? static_cast<void*>(buffer) : dst);
        part.args.execute(part.primitive, context_.stream);
        const int64_t count = banded() ? b.out_rows * out_row_elements_ : output_count_;
        if (buffer_bytes_ > 0) {
          activation_->apply_into(buffer, reinterpret_cast<uint16_t*>(dst), count);
        } else {
          activation_->apply(View{dst, output.dtype}, count);
        }
      }
    }
  }

 private:
  // One primitive (one band shape, or the whole batch) with its operands'
  // handles, re-pointed per call.
  struct Part {
    Part(const dnnl::convolution_forward::primitive_desc& pd, const void* weights,
         const dnnl::engine& engine, const std::string& node)
        : primitive(pd),
          src(pd.src_desc(), engine, DNNL_MEMORY_NONE),
          weights_memory(pd.weights_desc(), engine, const_cast<void*>(weights)),
          bias(pd.bias_desc(), engine, DNNL_MEMORY_NONE),
          dst(pd.dst_desc(), engine, DNNL_MEMORY_NONE),
          scratch(pd.scratchpad_desc(), engine, DNNL_MEMORY_NONE),
          args(node) {
      args.add(DNNL_ARG_SRC, src);
      args.add(DNNL_ARG_WEIGHTS, weights_memory);
      args.add(DNNL_ARG_BIAS, bias);
      args.add(DNNL_ARG_DST, dst);
      args.add(DNNL_ARG_SCRATCHPAD, scratch);
    }
    dnnl::convolution_forward primitive;
    dnnl::memory src, weights_memory, bias, dst, scratch;
    PrimitiveArgs args;
  };

  bool banded() const { return bands_.size() > 1; }

  CpuContext& context_;
  std::vector<Band> bands_;  // per image when banded, else one for the batch
  std::vector<Part> parts_;
  std::optional<OutputActivation> activation_;
  int64_t output_count_ = 0, images_ = 1, in_h_ = 0, out_h_ = 0;
  int64_t in_row_elements_ = 0, out_row_elements_ = 0;
  size_t source_bytes_ = 4, output_bytes_ = 4;  // element sizes
  size_t scratch_bytes_ = 0;  // the primitives', rounded to 64 bytes; the narrowed source after
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
