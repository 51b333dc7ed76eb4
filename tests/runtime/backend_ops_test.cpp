// Every op on every backend present against the reference kernels
// (runtime/reference/), at odd shapes: the CPU backend on each
// instruction-set path this CPU has, the CUDA backend (when a GPU is there)
// in float32, float16 and bfloat16. One node at a time, through the Backend
// interface only (allocate, constants, copy in, prepare, run, copy out), as
// the executor drives it.
//
// Tolerances (relative L2 to the reference, computed in double from the
// float32 operands), per precision:
//   float32: layout ops exact; pooling 1e-6; attention 2e-6; Conv2d,
//            Linear, LayerNorm 1e-5 (oneDNN's blocked float32 sums);
//   float16: 5e-3 (operands and results rounded to 11 bits);
//   bfloat16: 4e-2 (8 bits).
#include <doctest/doctest.h>

#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/isa.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/op_shapes.h"
#include "runtime/reference/reference_ops.h"
#include "tests/test_util.h"

using namespace ravlt;
using namespace ravlt::runtime;
using ravlt::test::random_vector;

namespace {

// One node with its operands: a graph of one node, values 0..k-1 the
// inputs (constants where marked), value k the output.
struct OpCase {
  std::string label;  // e.g. "3x3 stride 2, GELU"
  Node node;
  std::vector<Shape> input_shapes;
  std::vector<bool> constant;
  std::vector<std::vector<float>> data;  // per input
  double f32_tolerance = 1e-5;

  std::shared_ptr<const Graph> graph() const {
    std::vector<Value> values(input_shapes.size() + 1);
    for (size_t i = 0; i < input_shapes.size(); ++i) {
      values[i].name = "in" + std::to_string(i);
      values[i].shape = input_shapes[i];
      values[i].constant = constant[i];
      if (constant[i]) values[i].data = data[i].data();
    }
    values.back().name = "out";
    Node n = node;
    n.name = label;
    n.inputs.clear();
    for (uint32_t i = 0; i < input_shapes.size(); ++i) n.inputs.push_back(i);
    n.output = static_cast<uint32_t>(input_shapes.size());
    // from_parts takes one graph input; this test feeds every input itself.
    return Graph::from_parts(values, {n}, 0, {n.output});
  }
};

size_t count(const Shape& s) {
  return static_cast<size_t>(element_count(s));
}

// The RoPE buffer of a head dimension d: 10000^(-j/(d/4-1)), each twice.
std::vector<float> rope_angles(int d) {
  std::vector<float> a;
  for (int j = 0; j < d / 4; ++j) {
    const float v = d / 4 > 1
                        ? std::pow(10000.0f, -static_cast<float>(j) / static_cast<float>(d / 4 - 1))
                        : 1.0f;
    a.push_back(v);
    a.push_back(v);
  }
  return a;
}

std::string shape_label(const Shape& s) {
  return to_string(s);
}

// ---- The cases, per op (odd sizes, batch > 1, every fused option). ----

std::vector<OpCase> to_channels_last_cases() {
  // An image's 3 channels; 19 (the bfloat16 path gathers channels in
  // pieces of 16) over more positions than one tile of 64; 40 over two of
  // the GPU's 32 x 32 tiles, the second partial.
  std::vector<OpCase> cases;
  for (const Shape& shape : {Shape{2, 3, 3, 5}, Shape{2, 19, 9, 11}, Shape{2, 40, 9, 11}}) {
    OpCase c;
    c.node.op = Op::kToChannelsLast;
    c.input_shapes = {shape};
    c.constant = {false};
    c.data = {random_vector(count(shape), 1)};
    c.label = shape_label(shape);
    c.f32_tolerance = 0;
    cases.push_back(c);
  }
  return cases;
}

std::vector<OpCase> conv2d_cases() {
  struct Spec {
    int64_t n, h, w, cin, cout, k, stride, groups;
    Activation act;
  };
  const Spec specs[] = {{2, 9, 7, 3, 5, 3, 2, 1, Activation::kGelu},
                        {1, 8, 11, 6, 6, 3, 1, 1, Activation::kNone},
                        {2, 7, 5, 10, 10, 5, 1, 10, Activation::kNone},
                        {1, 13, 6, 12, 12, 3, 1, 12, Activation::kSwish},
                        {1, 5, 5, 4, 8, 3, 2, 1, Activation::kSwish},
                        {2, 6, 9, 5, 7, 1, 1, 1, Activation::kGelu},
                        // Depthwise without activation (the CPU's own rows,
                        // depthwise_conv2d.h): whole registers and a tail of
                        // channels; blocks of 8, 4, 2 and 1 columns, at and
                        // away from the edges; an image lower than the
                        // kernel and one narrower.
                        {2, 9, 17, 37, 37, 3, 1, 37, Activation::kNone},
                        {1, 6, 23, 48, 48, 5, 1, 48, Activation::kNone},
                        {2, 3, 15, 20, 20, 5, 1, 20, Activation::kNone},
                        {1, 4, 14, 64, 64, 3, 1, 64, Activation::kNone},
                        {2, 6, 3, 32, 32, 5, 1, 32, Activation::kNone},
                        // The GPU's depthwise kernel (7x7; channels over
                        // three blocks of 64 with a tail; rows over several
                        // tiles of 16), the shapes it leaves to the direct
                        // kernel (stride 2; groups that are not depthwise),
                        // and an im2col row longer than a warp.
                        {2, 5, 37, 130, 130, 7, 1, 130, Activation::kGelu},
                        {1, 9, 8, 24, 24, 3, 2, 24, Activation::kNone},
                        {2, 6, 7, 8, 12, 3, 1, 4, Activation::kSwish},
                        {1, 7, 9, 40, 16, 3, 2, 1, Activation::kGelu},
                        // With GELU (ours), which the "by bands" backends
                        // below run a few rows at a time: stride 2 over an
                        // even height (no padding below the last band) and
                        // a 5x5 window over an odd one.
                        {2, 8, 6, 4, 6, 3, 2, 1, Activation::kGelu},
                        {1, 11, 7, 3, 8, 5, 1, 1, Activation::kGelu},
                        // Narrow: bands of two rows (and a last of one),
                        // at stride 1 and 2.
                        {1, 13, 3, 2, 2, 3, 1, 1, Activation::kGelu},
                        {2, 33, 4, 3, 3, 3, 2, 1, Activation::kGelu}};
  std::vector<OpCase> cases;
  uint32_t seed = 10;
  for (const Spec& s : specs) {
    OpCase c;
    c.node.op = Op::kConv2d;
    const int k = static_cast<int>(s.k), st = static_cast<int>(s.stride);
    c.node.conv = {k, k, st, st, k / 2, k / 2, static_cast<int>(s.groups)};
    c.node.activation = s.act;
    c.input_shapes = {{s.n, s.h, s.w, s.cin}, {s.cout, s.cin / s.groups, s.k, s.k}, {s.cout}};
    c.constant = {false, true, true};
    c.data = {random_vector(count(c.input_shapes[0]), seed++),
              random_vector(count(c.input_shapes[1]), seed++, 0.3f),
              random_vector(count(c.input_shapes[2]), seed++)};
    std::ostringstream label;
    label << shape_label(c.input_shapes[0]) << " " << s.k << "x" << s.k << " stride " << s.stride
          << " groups " << s.groups << " act " << static_cast<int>(s.act);
    c.label = label.str();
    cases.push_back(std::move(c));
  }
  return cases;
}

std::vector<OpCase> linear_cases() {
  std::vector<OpCase> cases;
  uint32_t seed = 30;
  for (int variant = 0; variant < 4; ++variant) {
    const int64_t m = 37, k = 19, o = 23;
    OpCase c;
    c.node.op = Op::kLinear;
    c.node.activation = variant == 1   ? Activation::kGelu
                        : variant == 2 ? Activation::kSwish
                                       : Activation::kNone;
    c.input_shapes = {{2, m, 1, k}, {o, k}, {o}};
    c.constant = {false, true, true};
    const bool residual = variant == 0 || variant == 3;
    if (variant == 3) c.node.activation = Activation::kGelu;  // activation, then residual
    if (residual) {
      c.input_shapes.push_back({2, m, 1, o});
      c.constant.push_back(false);
    }
    for (size_t i = 0; i < c.input_shapes.size(); ++i) {
      c.data.push_back(random_vector(count(c.input_shapes[i]), seed++, i == 1 ? 0.3f : 1.0f));
    }
    c.label = "(2, 37, 1, 19) x (23, 19)" + std::string(residual ? " + residual" : "") + " act " +
              std::to_string(static_cast<int>(c.node.activation));
    cases.push_back(std::move(c));
  }
  // GELU over an output of several of its parallel tasks (16384 elements
  // each) and a tail, in both precisions.
  OpCase c;
  c.node.op = Op::kLinear;
  c.node.activation = Activation::kGelu;
  c.input_shapes = {{1, 41, 43, 9}, {37, 9}, {37}};
  c.constant = {false, true, true};
  for (size_t i = 0; i < c.input_shapes.size(); ++i) {
    c.data.push_back(random_vector(count(c.input_shapes[i]), seed++, i == 1 ? 0.5f : 1.0f));
  }
  c.label = "(1, 41, 43, 9) x (37, 9) act GELU";
  cases.push_back(std::move(c));
  return cases;
}

std::vector<OpCase> layer_norm_cases() {
  std::vector<OpCase> cases;
  uint32_t seed = 50;
  // A width below any vector width, one of whole registers, and registers
  // and a tail.
  for (int64_t width : {int64_t{7}, int64_t{48}, int64_t{37}}) {
    OpCase c;
    c.node.op = Op::kLayerNorm;
    c.node.epsilon = 1e-6f;
    c.input_shapes = {{2, 3, 5, width}, {width}, {width}};
    c.constant = {false, true, true};
    c.data = {random_vector(count(c.input_shapes[0]), seed++, 3.0f, 0.5f),
              random_vector(static_cast<size_t>(width), seed++),
              random_vector(static_cast<size_t>(width), seed++)};
    c.label = shape_label(c.input_shapes[0]);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::vector<OpCase> channel_slice_cases() {
  // A few channels, and a run longer than the GPU's 64 threads of a row.
  struct Slice {
    int64_t channels, begin, end;
  };
  std::vector<OpCase> cases;
  for (const Slice& s : {Slice{7, 2, 5}, Slice{150, 10, 140}}) {
    OpCase c;
    c.node.op = Op::kChannelSlice;
    c.node.slice_begin = static_cast<int>(s.begin);
    c.node.slice_end = static_cast<int>(s.end);
    c.input_shapes = {{2, 3, 5, s.channels}};
    c.constant = {false};
    c.data = {random_vector(count(c.input_shapes[0]), 60 + static_cast<uint32_t>(s.channels))};
    std::ostringstream label;
    label << shape_label(c.input_shapes[0]) << "[..., " << s.begin << ":" << s.end << "]";
    c.label = label.str();
    c.f32_tolerance = 0;
    cases.push_back(c);
  }
  return cases;
}

OpCase attention_case(Op op, int64_t n, int64_t h, int64_t w, int heads, int d, uint32_t seed,
                      float spread = 1.0f) {
  OpCase c;
  c.node.op = op;
  c.node.heads = heads;
  c.node.head_dim = d;
  const int64_t ch = int64_t{heads} * d;
  c.input_shapes = {{n, h, w, 4 * ch}, {n, h, w, ch}, {d / 2}};
  c.constant = {false, false, true};
  // q, k, v, o and lepe from N(0, spread^2): a large spread makes the
  // softmax peaked, so the online rescaling between key blocks matters.
  c.data = {random_vector(count(c.input_shapes[0]), seed, spread),
            random_vector(count(c.input_shapes[1]), seed + 1, spread), rope_angles(d)};
  std::ostringstream label;
  label << "batch " << n << " " << h << "x" << w << " heads " << heads << " d " << d
        << (spread != 1.0f ? " peaked" : "");
  c.label = label.str();
  c.f32_tolerance = 2e-6;
  return c;
}

std::vector<OpCase> attention_cases(Op op) {
  struct Size {
    int64_t n, h, w;
  };
  // L = 1, 7 (7 x 1), 3137 (1 x 3137, a prime) and three 2-D grids, one of
  // them past the most tokens softmax attention takes in whole rows (256:
  // softmax_attention_whole.h), so that each head dimension runs both ways.
  // Their last key blocks (64 keys) hold 1, 7, 1, 53, 27 and 3 keys: the
  // float32 kernel scores a quarter, half or all of that block.
  const Size sizes[] = {{2, 1, 1}, {2, 7, 1}, {1, 1, 3137}, {2, 9, 13}, {1, 7, 13}, {1, 17, 19}};
  std::vector<OpCase> cases;
  // The fast paths (16, 32, 48, 64, 96) and the generic one (20, 44).
  for (int d : {16, 20, 32, 44, 48, 64, 96}) {
    for (const Size& s : sizes) {
      // The reference softmax attention is quadratic: L = 3137 only at d = 16.
      if (op == Op::kSoftmaxAttention && s.h * s.w > 1000 && d != 16) continue;
      cases.push_back(attention_case(op, s.n, s.h, s.w, 2, d, static_cast<uint32_t>(d + s.w)));
    }
  }
  // Peaked: scores spread over tens, the maximum moving between blocks.
  for (int d : {20, 64}) cases.push_back(attention_case(op, 1, 15, 17, 3, d, 7u, 3.0f));
  // And over many key blocks at the published head dimension: L = 1031
  // leaves a 7-query tail and a 7-key last block.
  cases.push_back(attention_case(op, 1, 1, 1031, 2, 64, 11u, 3.0f));
  // Three (image, head) tasks: on two or more threads, softmax attention
  // prepares every task's keys first and shares out all their queries in
  // equal runs that cross from task to task, where the cases above (tasks a
  // multiple of two) run whole tasks per thread; and five heads of 196
  // queries, RAVLT-S's stage 3 at 224 x 224.
  cases.push_back(attention_case(op, 1, 1, 1031, 3, 64, 13u, 3.0f));
  cases.push_back(attention_case(op, 1, 14, 14, 5, 64, 17u));
  // A head wider than the GPU's 64 x 64 tiles of RALA's state (3 x 3 of
  // them, the last partial) and than its output pass in shared memory.
  cases.push_back(attention_case(op, 2, 5, 7, 2, 136, 29u));
  // Enough queries (256 blocks of 128) that the GPU's softmax attention
  // keeps its keys in one run, where the cases above split them.
  cases.push_back(attention_case(op, 8, 20, 20, 8, 16, 31u));
  // At 256 blocks of 64 queries and 16-bit storage the GPU's softmax
  // attention runs on tensor cores: head_dim 64 (peaked, the maximum
  // moving between tiles of 64 keys), 48, and 32 with a 53-key last tile
  // and a 53-query last block.
  cases.push_back(attention_case(op, 8, 14, 14, 8, 64, 37u, 3.0f));
  cases.push_back(attention_case(op, 8, 7, 13, 16, 48, 41u));
  cases.push_back(attention_case(op, 16, 9, 13, 8, 32, 43u));
  return cases;
}

std::vector<OpCase> rala_attention_cases() {
  return attention_cases(Op::kRalaAttention);
}

std::vector<OpCase> softmax_attention_cases() {
  return attention_cases(Op::kSoftmaxAttention);
}

std::vector<OpCase> global_avg_pool_cases() {
  OpCase c;
  c.node.op = Op::kGlobalAvgPool;
  c.input_shapes = {{2, 3, 5, 7}};
  c.constant = {false};
  c.data = {random_vector(count(c.input_shapes[0]), 70, 3.0f)};
  c.label = shape_label(c.input_shapes[0]);
  c.f32_tolerance = 1e-6;
  return {c};
}

std::vector<OpCase> to_channels_first_cases() {
  std::vector<OpCase> cases;
  // A plane shorter than the CPU kernel's tile of positions, one that
  // spans several tiles with a partial last one, and planes of whole
  // aligned tiles (streamed out), with channels in blocks and a tail.
  for (const Shape& shape :
       {Shape{2, 3, 5, 7}, Shape{2, 9, 11, 6}, Shape{2, 8, 12, 70}, Shape{1, 10, 10, 131}}) {
    OpCase c;
    c.node.op = Op::kToChannelsFirst;
    c.input_shapes = {shape};
    c.constant = {false};
    c.data = {random_vector(count(shape), 80 + static_cast<uint32_t>(cases.size()))};
    c.label = shape_label(shape);
    c.f32_tolerance = 0;
    cases.push_back(c);
  }
  return cases;
}

// One line per op: its cases. A missing line fails the build.
using CaseList = std::vector<OpCase> (*)();
constexpr CaseList kCases[] = {
#define RAVLT_OP(Name, snake, ...) snake##_cases,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
static_assert(sizeof(kCases) / sizeof(kCases[0]) == kOpCount, "every op needs test cases");

// ---- Running one case on one backend, through the Backend interface. ----

std::vector<float> run_on(Backend& backend, const OpCase& c, const Graph& graph) {
  const Node& node = graph.nodes()[0];
  std::vector<Shape> shapes = c.input_shapes;
  shapes.push_back(output_shape(ShapeRuleArgs{node, shapes}));
  auto kernel = backend.prepare(graph, node, shapes);
  std::vector<std::unique_ptr<BackendMemory>> memory;
  std::vector<ConstView> inputs;
  for (uint32_t i = 0; i < c.input_shapes.size(); ++i) {
    if (c.constant[i]) {
      inputs.push_back({backend.constant(graph, i), backend.constant_dtype(i)});
      continue;
    }
    const DType type = backend.value_dtype(graph, i);
    memory.push_back(backend.allocate(count(shapes[i]) * dtype_size(type)));
    backend.copy_in(memory.back()->data(), type, c.data[i].data(), count(shapes[i]));
    inputs.push_back({memory.back()->data(), type});
  }
  const DType act = backend.value_dtype(graph, node.output);
  auto output = backend.allocate(count(shapes.back()) * dtype_size(act));
  // Poisoned: an element the kernel leaves unwritten stays NaN and fails.
  const std::vector<float> poison(count(shapes.back()), std::numeric_limits<float>::quiet_NaN());
  backend.copy_in(output->data(), act, poison.data(), poison.size());
  auto scratch = backend.allocate(kernel->scratch_bytes());
  backend.begin_run(0);
  kernel->run(inputs.data(), View{output->data(), act},
              kernel->scratch_bytes() > 0 ? scratch->data() : nullptr);
  std::vector<float> result(count(shapes.back()));
  backend.copy_out(result.data(), output->data(), act, result.size());
  backend.finish_run();
  return result;
}

// `device`: a GPU keeps its weights and every intermediate of a kernel in
// 16 bits; the CPU narrows only the operands and the result (measured:
// rel L2 at most 3.7e-3, bfloat16's rounding of them).
double tolerance(DType precision, double f32, bool device) {
  if (precision == DType::kFloat16) return 5e-3;
  if (precision == DType::kBFloat16) return device ? 4e-2 : 8e-3;
  return f32;
}

// A backend to test: its name ("cpu avx2", "cuda bf16") and how to make it.
struct BackendUnderTest {
  std::string name;
  DType precision;
  std::function<std::unique_ptr<Backend>()> make;
  std::function<void()> select = [] {};  // e.g. force the instruction set
};

std::vector<BackendUnderTest> backends_present() {
  std::vector<BackendUnderTest> list;
  for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(cpu::detected_isa())) {
      MESSAGE("skipped: this CPU has no " << cpu::isa_name(isa) << " path");
      continue;
    }
    list.push_back(
        {std::string("cpu ") + cpu::isa_name(isa), DType::kFloat32,
         [] { return std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>()); },
         [isa] { cpu::force_isa(isa); }});
  }
  // bfloat16 on the CPU, every operand of the kernel in bfloat16 (a
  // session keeps its input and outputs float32), on every path of our
  // loops; oneDNN picks its own.
  std::string no_bf16;
  if (cpu::cpu_bf16_support(&no_bf16)) {
    for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
      if (static_cast<int>(isa) > static_cast<int>(cpu::detected_isa())) continue;
      list.push_back({std::string("cpu ") + cpu::isa_name(isa) + " bf16", DType::kBFloat16,
                      [] {
                        return std::make_unique<cpu::CpuBackend>(
                            std::make_shared<cpu::WeightCache>(), 0, DType::kBFloat16, false);
                      },
                      [isa] { cpu::force_isa(isa); }});
    }
    const cpu::Isa widest = cpu::detected_isa();
    list.push_back({std::string("cpu ") + cpu::isa_name(widest) + " bf16 split for 8 threads",
                    DType::kBFloat16,
                    [] {
                      return std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>(),
                                                               8, DType::kBFloat16, false);
                    },
                    [widest] { cpu::force_isa(widest); }});
  } else {
    MESSAGE("skipped: CPU bf16 (" << no_bf16 << ")");
  }
  // bfloat16 convolutions with GELU by bands of rows (conv2d.cpp), as at
  // detection sizes: bands of 64 bytes of float32 output (outputs of an
  // image above 256 bytes), one or two rows here.
  if (cpu::cpu_bf16_support()) {
    const cpu::Isa widest_isa = cpu::detected_isa();
    list.push_back({std::string("cpu ") + cpu::isa_name(widest_isa) + " bf16 convolutions by bands",
                    DType::kBFloat16,
                    [] {
                      auto backend = std::make_unique<cpu::CpuBackend>(
                          std::make_shared<cpu::WeightCache>(), 0, DType::kBFloat16, false);
                      backend->set_conv_band_bytes(64);
                      return backend;
                    },
                    [widest_isa] { cpu::force_isa(widest_isa); }});
  }
  // The widest path again as a session of 8 threads would run it: RALA
  // then splits the tokens of each (image, head) into parts (whatever the
  // cores this machine has).
  const cpu::Isa widest = cpu::detected_isa();
  list.push_back(
      {std::string("cpu ") + cpu::isa_name(widest) + " split for 8 threads", DType::kFloat32,
       [] { return std::make_unique<cpu::CpuBackend>(std::make_shared<cpu::WeightCache>(), 8); },
       [widest] { cpu::force_isa(widest); }});
  std::string why;
  if (cuda::available(&why)) {
    for (DType p : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
      list.push_back({"cuda " + std::string(dtype_short_name(p)), p, [p] {
                        cuda::CudaOptions options;
                        options.storage = p;
                        options.use_graphs = false;
                        // Uploads are keyed by value index: one store per
                        // case's graph, as one per model in a session.
                        return cuda::make_backend(std::make_shared<cuda::DeviceWeights>(), options);
                      }});
    }
  } else {
    MESSAGE("skipped: the CUDA backend (" << why << ")");
  }
  return list;
}

}  // namespace

TEST_CASE("every op on every backend present matches the reference kernels") {
  const std::vector<BackendUnderTest> backends = backends_present();
  std::map<std::string, int> ran;  // per backend
  int total = 0, failed = 0;
  for (size_t op = 0; op < kOpCount; ++op) {
    for (const OpCase& c : kCases[op]()) {
      const auto graph = c.graph();
      const Node& node = graph->nodes()[0];
      std::vector<reference::Operand> operands;
      for (size_t i = 0; i < c.input_shapes.size(); ++i) {
        operands.push_back({c.input_shapes[i], c.data[i].data()});
      }
      std::vector<Shape> shapes = c.input_shapes;
      const Shape out_shape = output_shape(ShapeRuleArgs{node, shapes});
      const std::vector<double> want = reference::run(node, operands, out_shape);
      for (const BackendUnderTest& b : backends) {
        b.select();
        // A backend that throws fails this case alone: the rest still run.
        std::vector<float> got;
        std::string error;
        try {
          auto backend = b.make();
          got = run_on(*backend, c, *graph);
        } catch (const std::exception& e) {
          error = e.what();
        }
        const double err = got.size() == want.size()
                               ? test::rel_l2(got.data(), want.data(), got.size())
                               : INFINITY;
        const double limit = tolerance(b.precision, c.f32_tolerance, b.name.rfind("cuda", 0) == 0);
        INFO(std::string(op_name(node.op))
             << " on " << b.name << ", " << c.label << ": rel L2 " << err << " (limit " << limit
             << ")" << (error.empty() ? "" : ": threw " + error));
        CHECK(error.empty());
        CHECK(got.size() == want.size());
        CHECK(err <= limit);
        ++ran[b.name];
        ++total;
        failed += err <= limit ? 0 : 1;
      }
      cpu::reset_isa();
    }
  }
  std::ostringstream summary;
  summary << "backend-ops: " << total << " cases (op, backend, ISA, precision, shape), " << failed
          << " failed;";
  for (const auto& [name, n] : ran) summary << " " << name << ": " << n << ";";
  MESSAGE(summary.str());
  CHECK(total > 0);
}

TEST_CASE("the reference kernels compute what the spec says on hand-checked values") {
  // A reference must not be wrong in the way the backends are: a few values
  // worked out by hand.
  Node pool;
  pool.op = Op::kGlobalAvgPool;
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};  // (1, 2, 2, 2)
  const auto mean = reference::run(pool, {{{1, 2, 2, 2}, x.data()}}, {1, 2});
  CHECK(mean == std::vector<double>{4.0, 5.0});

  Node ln;
  ln.op = Op::kLayerNorm;
  ln.epsilon = 0.0f;
  const std::vector<float> row = {1, 3}, gamma = {2, 2}, beta = {1, 0};
  const auto normed =
      reference::run(ln, {{{1, 2}, row.data()}, {{2}, gamma.data()}, {{2}, beta.data()}}, {1, 2});
  CHECK(normed[0] == doctest::Approx(-1.0));  // (1 - 2) / 1 * 2 + 1
  CHECK(normed[1] == doctest::Approx(2.0));   // (3 - 2) / 1 * 2 + 0

  Node lin;
  lin.op = Op::kLinear;
  lin.activation = Activation::kNone;
  const std::vector<float> in = {1, 2}, w = {3, 4, 5, 6}, b = {1, -1};  // W (2, 2)
  const auto y =
      reference::run(lin, {{{1, 2}, in.data()}, {{2, 2}, w.data()}, {{2}, b.data()}}, {1, 2});
  CHECK(y == std::vector<double>{12.0, 16.0});  // 1*3 + 2*4 + 1, 1*5 + 2*6 - 1
}
