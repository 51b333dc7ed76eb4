#include "runtime/cpu/gemm_primitive.h"

#include <string>

namespace ravlt::runtime::cpu {
namespace {

// A matmul on oneDNN's brgemm kernels (AVX-512 and up in oneDNN 2.6).
bool is_brgemm(const dnnl::matmul::primitive_desc& pd) {
  return std::string(pd.impl_info_str()).starts_with("brg");
}

// The attribute of either form: scratchpad ours, the activation, then the
// residual add (described as the form's destination is).
// `residual_index`: the add's place among the post-ops.
dnnl::primitive_attr gemm_attr(const OutputActivation* activation,
                               const std::optional<dnnl::memory::desc>& residual,
                               int& residual_index) {
  dnnl::primitive_attr attr = base_attr();
  dnnl::post_ops ops;
  if (activation != nullptr) activation->append_to(ops);
  residual_index = ops.len();
  if (residual) ops.append_binary(dnnl::algorithm::binary_add, *residual);
  attr.set_post_ops(ops);
  return attr;
}

// The 1x1 convolution form; with `only_jit_1x1`, none unless oneDNN runs
// it with its jit_1x1 kernel.
std::optional<GemmPrimitive> as_convolution(const GemmShape& s, const OutputActivation* activation,
                                            bool only_jit_1x1, const dnnl::engine& engine) {
  GemmPrimitive g;
  g.src = dnnl::memory::desc({1, s.k, s.m, 1}, s.source, tag::nhwc);
  g.dst = dnnl::memory::desc({1, s.o, s.m, 1}, s.output, tag::nhwc);
  g.bias = dnnl::memory::desc({s.o}, dt::f32, tag::x);
  g.residual = s.residual ? dnnl::memory::desc({1, s.o, s.m, 1}, *s.residual, tag::nhwc) : g.dst;
  std::optional<dnnl::memory::desc> residual;
  if (s.residual) residual = g.residual;
  const dnnl::convolution_forward::primitive_desc pd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                      dnnl::algorithm::convolution_direct, g.src,
                                      dnnl::memory::desc({s.o, s.k, 1, 1}, s.source, tag::any),
                                      g.bias, g.dst, {1, 1}, {0, 0}, {0, 0}),
      gemm_attr(activation, residual, g.residual_index), engine, /*allow_empty=*/only_jit_1x1);
  if (only_jit_1x1 && (!pd || !std::string(pd.impl_info_str()).starts_with("jit_1x1"))) {
    return std::nullopt;
  }
  g.weights = pd.weights_desc();
  g.scratchpad = pd.scratchpad_desc();
  g.stored_weights = dnnl::memory::desc({s.o, s.k, 1, 1}, dt::f32, tag::oihw);
  g.primitive = dnnl::convolution_forward(pd);
  g.convolution = true;
  return g;
}

}  // namespace

bool gemm_reads_stored_weights(const dnnl::engine& engine) {
  // oneDNN's choice depends on the CPU (and DNNL_MAX_CPU_ISA), not on the
  // shape: one small matmul on stored weights tells, once per process.
  static const bool brgemm = [&] {
    const dnnl::memory::desc src({16, 64}, dt::f32, tag::ab), dst({16, 64}, dt::f32, tag::ab);
    const dnnl::memory::desc weights({64, 64}, dt::f32, tag::ba);
    return is_brgemm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), engine));
  }();
  return brgemm;
}

GemmPrimitive make_gemm_primitive(const GemmShape& s, const OutputActivation* activation,
                                  GemmForm form, const dnnl::engine& engine) {
  if (form == GemmForm::kConvolution) return *as_convolution(s, activation, false, engine);
  GemmPrimitive g;
  g.src = dnnl::memory::desc({s.m, s.k}, s.source, tag::ab);
  g.dst = dnnl::memory::desc({s.m, s.o}, s.output, tag::ab);
  g.bias = dnnl::memory::desc({1, s.o}, dt::f32, tag::ab);
  g.residual = s.residual ? dnnl::memory::desc({s.m, s.o}, *s.residual, tag::ab) : g.dst;
  // The stored (o, k) weight is the (k, o) operand in layout ba.
  g.stored_weights = dnnl::memory::desc({s.k, s.o}, dt::f32, tag::ba);
  std::optional<dnnl::memory::desc> residual;
  if (s.residual) residual = g.residual;
  const auto matmul = [&](const dnnl::memory::desc& weights) {
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(g.src, weights, g.bias, g.dst),
                                        gemm_attr(activation, residual, g.residual_index), engine);
  };
  std::optional<dnnl::matmul::primitive_desc> pd;
  if (s.weights_as_stored && s.source == dt::f32) {
    // Only brgemm reads a weight in place at near its packed speed; the
    // gemm:jit matmul would pack it again in every run.
    pd = matmul(g.stored_weights);
    if (!is_brgemm(*pd)) pd.reset();
  }
  if (!pd) {
    // The primitive picks its own layout (any), into which the weight is
    // reordered (and narrowed) once per model.
    pd = matmul(dnnl::memory::desc({s.k, s.o}, s.source, tag::any));
    if (form == GemmForm::kBest && std::string(pd->impl_info_str()).starts_with("gemm")) {
      if (std::optional<GemmPrimitive> conv = as_convolution(s, activation, true, engine)) {
        return *conv;
      }
    }
  }
  g.weights = pd->weights_desc();
  g.scratchpad = pd->scratchpad_desc();
  g.primitive = dnnl::matmul(*pd);
  return g;
}

}  // namespace ravlt::runtime::cpu
