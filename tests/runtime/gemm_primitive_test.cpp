// One GEMM on either oneDNN form (runtime/cpu/gemm_primitive.h): the matmul
// and the 1x1 convolution compute (m, k) x (k, o) + bias, then swish or
// nothing, then the residual, as the reference Linear does in double, at
// odd sizes, on the same buffers; and the best form is the convolution
// exactly where the matmul would take oneDNN's gemm:jit path. CTest runs this binary twice,
// the second time as an AVX2 CPU (DNNL_MAX_CPU_ISA=AVX2), where that is
// every RAVLT shape.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/cpu/gemm_primitive.h"
#include "runtime/reference/reference_ops.h"
#include "tests/test_util.h"

using namespace ravlt::runtime;
using namespace ravlt::runtime::cpu;
using ravlt::test::random_vector;

namespace {

struct Case {
  int64_t m, k, o;
  bool swish, residual;
};

// Runs `form` on fresh random operands; returns the largest error against
// float64, relative to the output's largest magnitude. `as_stored`: asks
// for the weight as stored (GemmShape::weights_as_stored); `in_place` says
// whether the form reads it so (nothing to pack).
double gemm_error(const Case& c, GemmForm form, bool* convolution = nullptr, bool as_stored = false,
                  bool* in_place = nullptr) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const std::vector<float> x = random_vector(static_cast<size_t>(c.m * c.k), 1, 1.0f);
  const std::vector<float> w = random_vector(static_cast<size_t>(c.o * c.k), 2, 0.2f);  // (o, k)
  const std::vector<float> b = random_vector(static_cast<size_t>(c.o), 3, 0.5f);
  const std::vector<float> r = random_vector(static_cast<size_t>(c.m * c.o), 4, 1.0f);
  std::vector<float> y(static_cast<size_t>(c.m * c.o), -1.0f);
  std::optional<OutputActivation> activation;
  activation.emplace(c.swish ? Activation::kSwish : Activation::kNone, c.residual,
                     ravlt::DType::kFloat32, true, 2);
  GemmShape shape{c.m, c.k, c.o, dt::f32, dt::f32, std::nullopt};
  if (c.residual) shape.residual = dt::f32;
  shape.weights_as_stored = as_stored;
  const GemmPrimitive g = make_gemm_primitive(shape, &*activation, form, engine);
  if (convolution != nullptr) *convolution = g.convolution;
  if (in_place != nullptr) *in_place = g.weights == g.stored_weights;
  // The weight into the form's layout, as the weight cache does.
  dnnl::memory stored(g.stored_weights, engine, const_cast<float*>(w.data()));
  dnnl::memory packed(g.weights, engine);
  dnnl::reorder(stored, packed).execute(stream, stored, packed);
  std::vector<uint8_t> scratch(g.scratchpad.get_size() + 64);
  dnnl::memory src(g.src, engine, const_cast<float*>(x.data()));
  dnnl::memory bias(g.bias, engine, const_cast<float*>(b.data()));
  dnnl::memory dst(g.dst, engine, y.data());
  dnnl::memory residual(g.residual, engine, const_cast<float*>(r.data()));
  dnnl::memory pad(g.scratchpad, engine, scratch.data());
  std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, src},
                                                {DNNL_ARG_WEIGHTS, packed},
                                                {DNNL_ARG_BIAS, bias},
                                                {DNNL_ARG_DST, dst},
                                                {DNNL_ARG_SCRATCHPAD, pad}};
  if (c.residual) {
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(g.residual_index) | DNNL_ARG_SRC_1] = residual;
  }
  g.primitive.execute(stream, args);
  stream.wait();
  // The reference Linear (runtime/reference/), in double.
  Node linear;
  linear.op = Op::kLinear;
  linear.activation = c.swish ? Activation::kSwish : Activation::kNone;
  std::vector<reference::Operand> operands = {
      {{c.m, c.k}, x.data()}, {{c.o, c.k}, w.data()}, {{c.o}, b.data()}};
  if (c.residual) operands.push_back({{c.m, c.o}, r.data()});
  const std::vector<double> want = reference::run(linear, operands, {c.m, c.o});
  double worst = 0.0, largest = 0.0;
  for (double v : want) largest = std::max(largest, std::fabs(v));
  for (size_t i = 0; i < y.size(); ++i) {
    const double err = std::fabs(y[i] - want[i]);
    if (!(err <= worst)) worst = err;  // a NaN makes worst NaN
  }
  return worst / std::max(largest, 1e-30);
}

// RAVLT's Linear shapes (stage 4 at batch 1, stage 3, the stage-1 FFN) and
// odd ones: a single row, widths that are no multiple of a register.
const Case kCases[] = {{49, 512, 2048, false, false}, {196, 256, 1024, false, true},
                       {3136, 64, 224, false, false}, {1, 1024, 1000, false, false},
                       {7, 37, 21, true, false},      {197, 24, 40, true, true},
                       {53, 96, 17, false, true}};

// oneDNN reads either name.
bool acting_as_avx2() {
  for (const char* name : {"DNNL_MAX_CPU_ISA", "ONEDNN_MAX_CPU_ISA"}) {
    const char* isa = std::getenv(name);
    if (isa != nullptr) return std::string(isa) == "AVX2";
  }
  return false;
}

}  // namespace

TEST_CASE("the matmul and the 1x1 convolution forms compute the same GEMM") {
  for (const Case& c : kCases) {
    CAPTURE(c.m);
    CAPTURE(c.k);
    CAPTURE(c.o);
    CAPTURE(c.swish);
    CAPTURE(c.residual);
    CHECK(gemm_error(c, GemmForm::kMatmul) <= 1e-5);
    CHECK(gemm_error(c, GemmForm::kConvolution) <= 1e-5);
    bool convolution = false;
    CHECK(gemm_error(c, GemmForm::kBest, &convolution) <= 1e-5);
    // Acting as an AVX2 CPU, oneDNN 2.6's matmul is gemm:jit and the
    // convolution jit_1x1:avx2 at every one of these shapes.
    if (acting_as_avx2()) CHECK(convolution);
  }
}

TEST_CASE("the best form keeps the matmul where oneDNN has brgemm for it") {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  const GemmShape shape{196, 256, 1024, dt::f32, dt::f32, std::nullopt};
  const dnnl::matmul::primitive_desc matmul(
      dnnl::matmul::desc(dnnl::memory::desc({196, 256}, dt::f32, tag::ab),
                         dnnl::memory::desc({256, 1024}, dt::f32, tag::any),
                         dnnl::memory::desc({196, 1024}, dt::f32, tag::ab)),
      engine);
  const GemmPrimitive best = make_gemm_primitive(shape, nullptr, GemmForm::kBest, engine);
  const std::string impl = matmul.impl_info_str();
  const std::string chosen = best.convolution ? "1x1 convolution" : "matmul";
  MESSAGE("matmul: ", impl, "; best form: ", chosen);
  if (impl.starts_with("brg")) CHECK_FALSE(best.convolution);
  if (acting_as_avx2()) CHECK(best.convolution);
}

TEST_CASE("weights as stored: read in place by a brgemm matmul, packed where there is none") {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  for (const Case& c : kCases) {
    CAPTURE(c.m);
    CAPTURE(c.k);
    CAPTURE(c.o);
    // Whether oneDNN has a brgemm matmul for the weight where it lies.
    const dnnl::matmul::primitive_desc stored(
        dnnl::matmul::desc(dnnl::memory::desc({c.m, c.k}, dt::f32, tag::ab),
                           dnnl::memory::desc({c.k, c.o}, dt::f32, tag::ba),
                           dnnl::memory::desc({c.m, c.o}, dt::f32, tag::ab)),
        engine);
    const bool brgemm = std::string(stored.impl_info_str()).starts_with("brg");
    bool convolution = false, in_place = false;
    CHECK(gemm_error(c, GemmForm::kBest, &convolution, true, &in_place) <= 1e-5);
    CHECK(in_place == brgemm);
    if (brgemm) CHECK_FALSE(convolution);
    // Acting as an AVX2 CPU: packed for the 1x1 convolution, as without the ask.
    if (acting_as_avx2()) CHECK((!in_place && convolution));
    // Asked for a packed weight, no form reads it in place.
    CHECK(gemm_error(c, GemmForm::kBest, nullptr, false, &in_place) <= 1e-5);
    CHECK_FALSE(in_place);
  }
}
