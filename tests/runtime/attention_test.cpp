// The CPU attention kernels' behaviour beyond their values (which
// backend_ops_test checks against the reference on every path): NaN
// propagation, operands of mixed types, and the instruction-set choice.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "base/half_float.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/softmax_attention_blocks.h"
#include "runtime/cpu/softmax_attention_whole.h"

using namespace ravlt::runtime;
using ravlt::DType;
using ravlt::dtype_short_name;
using namespace ravlt::runtime::cpu;

namespace {

struct Problem {
  int64_t n, h, w;
  int heads, d;
  std::vector<float> qkvo, lepe, angle;
};

// q, k, v, o and lepe drawn from N(0, spread^2): a large spread makes the
// softmax peaked, so the online rescaling between key blocks matters.
Problem make_problem(int64_t n, int64_t h, int64_t w, int heads, int d, uint32_t seed,
                     float spread = 1.0f) {
  Problem p{n, h, w, heads, d, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  const int64_t c = int64_t{heads} * d;
  p.qkvo.resize(static_cast<size_t>(n * h * w * 4 * c));
  for (float& v : p.qkvo) v = normal(rng);
  p.lepe.resize(static_cast<size_t>(n * h * w * c));
  for (float& v : p.lepe) v = normal(rng);
  for (int j = 0; j < d / 4; ++j) {  // the RoPE buffer: 10000^(-j/(d/4-1)), each twice
    const float a = d / 4 > 1
                        ? std::pow(10000.0f, -static_cast<float>(j) / static_cast<float>(d / 4 - 1))
                        : 1.0f;
    p.angle.push_back(a);
    p.angle.push_back(a);
  }
  return p;
}

// The one-node graph of problem p (an attention node) and the context of
// a CPU backend in `precision`, as a kernel factory is handed them.
struct AttentionNode {
  AttentionNode(const Problem& p, bool rala, DType precision) {
    const int64_t c = int64_t{p.heads} * p.d;
    std::vector<Value> values(4);
    values[0].shape = {p.n, p.h, p.w, 4 * c};
    values[1].shape = {p.n, p.h, p.w, c};
    values[2].constant = true;
    values[2].shape = {p.d / 2};
    values[2].data = p.angle.data();
    values[3].shape = {p.n, p.h, p.w, c};
    Node node;
    node.name = "attention";
    node.op = rala ? Op::kRalaAttention : Op::kSoftmaxAttention;
    node.inputs = {0, 1, 2};
    node.output = 3;
    node.heads = p.heads;
    node.head_dim = p.d;
    graph = Graph::from_parts(values, {node}, 0, {3});
    for (const Value& v : values) shapes.push_back(v.shape);
    context.precision = precision;
    context.float32_interface = false;
  }
  PrepareArgs args() { return PrepareArgs{*graph, graph->nodes()[0], shapes, context}; }

  std::shared_ptr<const Graph> graph;
  std::vector<Shape> shapes;
  CpuContext context;
};

// The kernel's output for problem p; in bfloat16 every operand but the
// RoPE table is narrowed first and the output widened after.
std::vector<float> run_kernel(const Problem& p, bool rala, DType precision = DType::kFloat32) {
  AttentionNode node(p, rala, precision);
  auto kernel = make_kernel(node.args());
  std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
  auto* aligned =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
  std::vector<float> out(p.lepe.size());
  if (precision == DType::kFloat32) {
    const ConstView inputs[3] = {{p.qkvo.data()}, {p.lepe.data()}, {p.angle.data()}};
    kernel->run(inputs, View{out.data()}, aligned);
    return out;
  }
  auto narrow = [](const std::vector<float>& x) {
    std::vector<uint16_t> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = ravlt::float_to_bfloat16(x[i]);
    return y;
  };
  const std::vector<uint16_t> qkvo = narrow(p.qkvo), lepe = narrow(p.lepe);
  std::vector<uint16_t> out16(out.size());
  const ConstView inputs[3] = {
      {qkvo.data(), DType::kBFloat16}, {lepe.data(), DType::kBFloat16}, {p.angle.data()}};
  kernel->run(inputs, View{out16.data(), DType::kBFloat16}, aligned);
  for (size_t i = 0; i < out.size(); ++i) out[i] = ravlt::bfloat16_to_float(out16[i]);
  return out;
}

}  // namespace

TEST_CASE("a NaN in the input comes out as NaN, on every path (no garbage, no crash)") {
  // bfloat16 where the CPU has it: softmax attention then runs on oneDNN's
  // matmuls at AVX-512 if there are fast bfloat16 units (AMX tiles, AMD's
  // AVX512_BF16), and in our loops otherwise.
  std::vector<DType> precisions = {DType::kFloat32};
  std::string no_bf16;
  if (cpu_bf16_support(&no_bf16)) precisions.push_back(DType::kBFloat16);
  for (DType precision : precisions) {
    for (bool rala : {true, false}) {
      for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
        if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
        force_isa(isa);
        for (int d : {20, 64}) {
          Problem p = make_problem(1, 5, 7, 2, d, 3u);
          p.qkvo[static_cast<size_t>(4 * 2 * d) + 1] = std::nanf("");  // token 1, head 0, q
          const std::vector<float> out = run_kernel(p, rala, precision);
          size_t nans = 0;
          for (float v : out) nans += std::isnan(v) ? 1 : 0;
          INFO(std::string(rala ? "RALA " : "softmax ")
               << isa_name(isa) << " " << dtype_short_name(precision) << " d=" << d);
          CHECK(nans > 0);
        }
      }
    }
  }
  reset_isa();
}

TEST_CASE("RALA on operands of mixed types computes what it does on bfloat16 ones") {
  // In a bfloat16 plan whose RALA output is asked for (a captured output,
  // kept float32) its input stays bfloat16: the kernel then widens chunks
  // of rows into buffers instead of reading bfloat16 in its loops. Both
  // compute in float32 from the same values; the all-bfloat16 output is
  // that result rounded once.
  std::string no_bf16;
  if (!cpu_bf16_support(&no_bf16)) {
    MESSAGE("skipped: " << no_bf16);
    return;
  }
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
    force_isa(isa);
    for (int d : {20, 64}) {
      const Problem p = make_problem(2, 9, 11, 2, d, 7u);
      const std::vector<float> want = run_kernel(p, true, DType::kBFloat16);
      // qkvo float32 (bfloat16 values), lepe bfloat16, the output float32.
      AttentionNode node(p, true, DType::kBFloat16);
      node.context.float32_interface = true;  // the graph's input and output float32
      auto kernel = make_kernel(node.args());
      std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
      auto* aligned =
          reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
      std::vector<float> qkvo(p.qkvo.size());
      for (size_t i = 0; i < qkvo.size(); ++i) {
        qkvo[i] = ravlt::bfloat16_to_float(ravlt::float_to_bfloat16(p.qkvo[i]));
      }
      std::vector<uint16_t> lepe(p.lepe.size());
      for (size_t i = 0; i < lepe.size(); ++i) lepe[i] = ravlt::float_to_bfloat16(p.lepe[i]);
      std::vector<float> got(want.size());
      const ConstView inputs[3] = {
          {qkvo.data()}, {lepe.data(), DType::kBFloat16}, {p.angle.data()}};
      kernel->run(inputs, View{got.data()}, aligned);
      double worst = 0.0;
      for (size_t i = 0; i < got.size(); ++i) {
        worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]) -
                                    std::abs(static_cast<double>(got[i])) / 256.0);
      }
      INFO(std::string(isa_name(isa))
           << " d=" << d << ": worst difference beyond bfloat16's rounding " << worst);
      CHECK(worst <= 1e-6);
    }
  }
  reset_isa();
}

TEST_CASE(
    "bfloat16 softmax attention runs on oneDNN's matmuls where bfloat16 units outrun float32") {
  std::string no_bf16;
  if (!cpu_bf16_support(&no_bf16)) {
    MESSAGE("skipped: " << no_bf16);
    return;
  }
  // AMX tiles, or AVX512_BF16 whose dot product outruns the FMA (AMD's):
  // the scores and the update on oneDNN's matmuls, over whole rows of
  // scores up to kWholeRowsMaxTokens tokens, over key blocks past that;
  // Intel's AVX512_BF16 alone: our float32 loops on the bfloat16 operands.
  const bool units =
      dnnl::get_effective_cpu_isa() == dnnl::cpu_isa::avx512_core_amx || bf16_dot_outruns_fma();
  const Problem few = make_problem(2, 16, 16, 3, 64, 5u);  // L = 256, the most in whole rows
  const Problem many = make_problem(1, 1, kWholeRowsMaxTokens + 1, 2, 64, 6u);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
    force_isa(isa);
    INFO(std::string(isa_name(isa)) << (units ? ", bfloat16 units" : ", no fast bfloat16 units"));
    // The loops around the matmuls are AVX-512 ones: a narrower forced
    // instruction set runs the float32 kernel (so tests cover both).
    const bool on_matmuls = units && isa == Isa::kAvx512;
    AttentionNode whole(few, false, DType::kBFloat16);
    CHECK((make_softmax_attention_whole(whole.args()) != nullptr) == on_matmuls);
    AttentionNode blocks(many, false, DType::kBFloat16);
    CHECK(make_softmax_attention_whole(blocks.args()) == nullptr);
    CHECK((make_softmax_attention_blocks(blocks.args()) != nullptr) == on_matmuls);
    // And in float32 neither.
    for (const Problem* p : {&few, &many}) {
      AttentionNode f32(*p, false, DType::kFloat32);
      CHECK(make_softmax_attention_whole(f32.args()) == nullptr);
      CHECK(make_softmax_attention_blocks(f32.args()) == nullptr);
    }
  }
  reset_isa();
}

TEST_CASE("forcing an instruction set the CPU lacks is refused") {
  if (detected_isa() == Isa::kAvx512) {
    MESSAGE("skipped: this CPU has every path");
    return;
  }
  CHECK_THROWS(force_isa(Isa::kAvx512));
}
