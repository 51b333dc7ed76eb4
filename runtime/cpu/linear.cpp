// Linear (every 1x1 convolution) as one GEMM, (M, K) x (K, O) with M = all
// positions of the batch, on oneDNN's matmul or, where that is slow, its
// 1x1 convolution (gemm_primitive.h). Bias, swish and the residual add are
// fused as post-ops; GELU is ours, right after or by pieces of rows
// (output_activation.h). In bfloat16 the source and weights are bfloat16 (a
// float32 source narrowed first), the destination and residual as the plan
// stores them (float32 for the residual stream and the logits), and oneDNN
// accumulates in float32.
#include <optional>

#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/gemm_primitive.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/output_activation.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

class LinearKernel : public Kernel {
 public:
  explicit LinearKernel(const PrepareArgs& a) : context_(a.context), args_(a.node.name) {
    const Node& n = a.node;
    const Shape& x = a.input_shape(0);
    const Shape& w = a.input_shape(1);
    const int64_t k = w[1], o = w[0];
    const int64_t m = element_count(x) / k;
    const DType compute_type = a.context.compute_dtype(a.graph, n);
    const dt compute = dnnl_type(compute_type);
    narrowed_ = NarrowedSource(input_dtype(a, 0), compute_type, m * k);
    has_residual_ = n.inputs.size() == 4;
    activation_.emplace(n.activation, has_residual_, output_dtype(a), true, a.context.threads);
    // By pieces (GELU into a bfloat16 output): the primitive computes
    // piece_rows_ rows at a time into a float32 buffer.
    const bool by_pieces = activation_->mode() == OutputActivation::Mode::kByPieces;
    rows_ = m;
    width_ = o;
    piece_rows_ = by_pieces ? OutputActivation::piece_rows(m, o) : m;
    source_row_bytes_ = static_cast<size_t>(k) * (compute_type == DType::kBFloat16 ? 2 : 4);
    GemmShape shape{piece_rows_, k, o, compute, by_pieces ? dt::f32 : dnnl_type(output_dtype(a)),
                    std::nullopt};
    if (has_residual_) shape.residual = dnnl_type(input_dtype(a, 3));
    shape.weights_as_stored = !a.context.pack_weights;
    // By pieces, the primitive runs on row offsets of a larger output: the
    // matmul form, whose rows are its own (m, o) block.
    const GemmPrimitive gemm = make_gemm_primitive(
        shape, &*activation_, by_pieces ? GemmForm::kMatmul : GemmForm::kBest, context_.engine);
    primitive_ = gemm.primitive;
    scratch_bytes_ = cache_lines(gemm.scratchpad.get_size());
    piece_bytes_ = by_pieces ? cache_lines(static_cast<size_t>(piece_rows_ * o) * 4) : 0;
    src_ = dnnl::memory(gemm.src, context_.engine, DNNL_MEMORY_NONE);
    const void* packed = packed_weight(a, 1, gemm.stored_weights, gemm.weights);
    count_stored_weight_gemm(a, 1, packed);
    weights_ = dnnl::memory(gemm.weights, context_.engine, const_cast<void*>(packed));
    bias_ = dnnl::memory(gemm.bias, context_.engine, DNNL_MEMORY_NONE);
    dst_ = dnnl::memory(gemm.dst, context_.engine, DNNL_MEMORY_NONE);
    residual_ = dnnl::memory(gemm.residual, context_.engine, DNNL_MEMORY_NONE);
    scratch_ = dnnl::memory(gemm.scratchpad, context_.engine, DNNL_MEMORY_NONE);
    args_.add(DNNL_ARG_SRC, src_);
    args_.add(DNNL_ARG_WEIGHTS, weights_);
    args_.add(DNNL_ARG_BIAS, bias_);
    args_.add(DNNL_ARG_DST, dst_);
    args_.add(DNNL_ARG_SCRATCHPAD, scratch_);
    if (has_residual_) {
      args_.add(DNNL_ARG_ATTR_MULTIPLE_POST_OP(gemm.residual_index) | DNNL_ARG_SRC_1, residual_);
    }
  }

  size_t scratch_bytes() const override {
    return scratch_bytes_ + narrowed_.bytes() + piece_bytes_;
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    auto* source =
        static_cast<uint8_t*>(narrowed_.source(convert_, in[0], scratch + scratch_bytes_));
    bias_.set_data_handle(const_cast<float*>(in[2].f32()));
    if (has_residual_) residual_.set_data_handle(handle(in[3].data));
    scratch_.set_data_handle(scratch);
    if (piece_bytes_ == 0) {
      src_.set_data_handle(source);
      dst_.set_data_handle(output.data);
      args_.execute(primitive_, context_.stream);
      activation_->apply(output, rows_ * width_);
      return;
    }
    // By pieces: rows [first, first + piece_rows_), the last piece ending
    // at the last row (it may redo a few rows of the one before; they keep
    // what the last piece wrote).
    auto* piece = reinterpret_cast<float*>(scratch + scratch_bytes_ + narrowed_.bytes());
    auto* out = static_cast<uint16_t*>(output.data);
    dst_.set_data_handle(piece);
    for (int64_t first = 0;; first += piece_rows_) {
      if (first + piece_rows_ > rows_) first = rows_ - piece_rows_;
      src_.set_data_handle(source + static_cast<size_t>(first) * source_row_bytes_);
      args_.execute(primitive_, context_.stream);
      activation_->apply_into(piece, out + first * width_, piece_rows_ * width_);
      if (first + piece_rows_ == rows_) break;
    }
  }

 private:
  CpuContext& context_;
  dnnl::primitive primitive_;  // a matmul, or its 1x1 convolution form (gemm_primitive.h)
  dnnl::memory src_, weights_, bias_, dst_, residual_, scratch_;
  PrimitiveArgs args_;
  bool has_residual_ = false;
  std::optional<OutputActivation> activation_;
  int64_t rows_ = 0, width_ = 0;  // of the output (M, O)
  int64_t piece_rows_ = 0;        // rows per primitive run: all, or a piece
  size_t source_row_bytes_ = 0;
  size_t piece_bytes_ = 0;    // the float32 piece buffer (by pieces), after the narrowed source
  size_t scratch_bytes_ = 0;  // the primitive's, rounded to 64 bytes; the narrowed source after
  NarrowedSource narrowed_;
  const ConvertLoops& convert_ = convert_loops(active_isa());
};

}  // namespace

std::unique_ptr<Kernel> make_linear(const PrepareArgs& args) {
  return std::make_unique<LinearKernel>(args);
}

}  // namespace ravlt::runtime::cpu
