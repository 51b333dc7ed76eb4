// Depthwise convolutions on our own rows (depthwise_loops.inc), the rows
// split between the session's threads. oneDNN 2.6's depthwise kernel
// (brdgmm_dw) ran RAVLT-T's at 10-40 % of the GEMM rate on Zen 4; ours
// keeps 8 output columns in registers and reads each input column once per
// tap row. Its input may be a slice of wider pixels (lepe's v, channels
// 2C..3C of the qkvo rows), read in place instead of copied out first.
// In bfloat16 plans it writes bfloat16 rows (float32 taps and
// arithmetic); the 3x3 reads bfloat16 rows as they are, the 5x5 widens
// them once into a float32 ring of rows first (the constructor says why).
// oneDNN 2.6's bfloat16 depthwise kernel took 1.3-1.8x the time of ours in
// float32 on a 2-core Emerald Rapids (RAVLT-S, batch 1).
#include "runtime/cpu/depthwise_conv2d.h"

#include <omp.h>

#include <type_traits>

#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu {
namespace {

// Whether `conv` is a convolution ours computes, with input (N, H, W, C).
bool ours_can_run(const Node& conv, const std::vector<Shape>& shapes) {
  const ConvAttrs& c = conv.conv;
  const Shape& x = shapes[conv.inputs[0]];
  const Shape& w = shapes[conv.inputs[1]];
  const Shape& y = shapes[conv.output];
  const int k = c.kernel_h;
  const bool depthwise = conv.op == Op::kConv2d && x.size() == 4 && w.size() == 4 && y == x &&
                         c.groups == x[3] && w[0] == x[3] && w[1] == 1 && w[2] == k && w[3] == k;
  const bool same_size = (k == 3 || k == 5) && c.kernel_w == k && c.stride_h == 1 &&
                         c.stride_w == 1 && c.pad_h == k / 2 && c.pad_w == k / 2;
  // Where ours is the faster, measured against oneDNN's in one process
  // (2 threads, Zen 4, alternated, medians): 0.58-0.90x at RAVLT's
  // 56x56x64, 28x28x128, 14x14x256 and 14x14x896 (3x3 and 5x5), 0.71-0.91x
  // at most 800x1216 stages, 1.03x at 7x7x1792; slower at 512 channels
  // (1.14-1.26x at 25x38x512, 1.2x at 7x7x512: a pixel is 2 KB, so the
  // columns a block reads and writes alias every 4 KB). Decided by the
  // model alone, not the input's size: a weight's layout must not depend
  // on it (one packed copy, and the packed-weight file serves every size).
  // With AVX2 (16 registers) against oneDNN's jit_dw:avx2, the same way:
  // 0.85-1.16x by shape, no gain; there oneDNN keeps them.
  return depthwise && same_size && conv.activation == Activation::kNone && x[3] % 512 != 0 &&
         active_isa() == Isa::kAvx512;
}

class DepthwiseConv2dKernel : public Kernel {
 public:
  // `a`: the convolution; its input channels [begin, begin + C) of pixels
  // `in_channels` wide (a slice read in place), or the whole of them.
  DepthwiseConv2dKernel(const PrepareArgs& a, int64_t in_channels, int64_t begin)
      : k_(a.node.conv.kernel_h),
        in_channels_(in_channels),
        begin_(begin),
        threads_(a.context.threads) {
    const Shape& x = a.input_shape(0);
    n_ = x[0];
    h_ = x[1];
    w_ = x[2];
    c_ = x[3];
    taps_ = depthwise_taps(a, k_, c_);  // the mapped original is released
    bf16_ = output_dtype(a) == DType::kBFloat16;
    // A 5x5 on bfloat16 widens its input rows once (see rows()): read
    // directly, each column is widened once per tap row and output row
    // that reads it (two more uops on the FMA ports beside its five
    // multiply-adds), and lepe took 1.3x its float32 time (Emerald Rapids,
    // RAVLT-T batch 1); widened first, 0.79-0.82x the direct time (T and S,
    // 7 alternated profile rounds). A 3x3 reads its rows directly: its two
    // rows a pass feed each loaded column into up to six multiply-adds, and
    // the ring's extra row traffic made the FFN's 1.08x slower.
    widen_ = bf16_ && k_ == 5;
  }

  size_t scratch_bytes() const override {
    return widen_ ? static_cast<size_t>(threads_ * ring_rows() * w_ * c_) * sizeof(float) : 0;
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    if (widen_) {
      rows<true>(static_cast<const uint16_t*>(in[0].data) + begin_, in[2].f32(),
                 static_cast<uint16_t*>(output.data), loops_.depthwise5x5_row_bf16_out, nullptr,
                 reinterpret_cast<float*>(scratch));
    } else if (bf16_) {
      rows(static_cast<const uint16_t*>(in[0].data) + begin_, in[2].f32(),
           static_cast<uint16_t*>(output.data), loops_.depthwise3x3_row_bf16,
           loops_.depthwise3x3_two_rows_bf16);
    } else {
      rows(in[0].f32() + begin_, in[2].f32(), output.f32(),
           k_ == 3 ? loops_.depthwise3x3_row : loops_.depthwise5x5_row,
           k_ == 3 ? loops_.depthwise3x3_two_rows : nullptr);
    }
  }

 private:
  // Every output row (of Out elements: float or bfloat16), each thread an
  // equal run of the batch's rows: two at a time through `two_rows` where
  // there is one (3x3) and both lie in one image, else by `one_row`.
  // `Widen` (bfloat16 input rows T, `ring` the scratch): each thread
  // widens the input rows it reads once into a ring of ring_rows() float32
  // rows of its own (row g of the batch in slot g % ring_rows(): the K + 1
  // rows a pair reads lie in distinct slots), compacted to the C channels
  // computed, and runs the float32-input loops on them.
  template <bool Widen = false, typename T, typename Out, typename OneRow, typename TwoRows>
  void rows(const T* x, const float* bias, Out* y, OneRow one_row, TwoRows two_rows,
            float* ring = nullptr) const {
    const int64_t in_row = w_ * in_channels_, out_row = w_ * c_, pad = k_ / 2, total = n_ * h_;
    using Row = std::conditional_t<Widen, float, T>;
    const int64_t stride = Widen ? c_ : in_channels_;
#pragma omp parallel num_threads(threads_)
    {
      const int64_t shares = omp_get_num_threads(), me = omp_get_thread_num();
      const int64_t end = total * (me + 1) / shares;
      float* my_ring = Widen ? ring + me * ring_rows() * out_row : nullptr;
      int64_t held[kMaxRing] = {-1, -1, -1, -1, -1, -1};  // the batch row in each slot
      auto input_row = [&](int64_t g) -> const Row* {
        if constexpr (!Widen) {
          return x + g * in_row;
        } else {
          const int64_t slot = g % ring_rows();
          float* dst = my_ring + slot * out_row;
          if (held[slot] != g) {
            convert_.bf16_rows_to_f32(x + g * in_row, in_channels_, w_, c_, dst);
            held[slot] = g;
          }
          return dst;
        }
      };
      for (int64_t task = total * me / shares; task < end;) {
        const int64_t image = task / h_, r = task % h_;
        const bool pair = two_rows != nullptr && task + 1 < end && r + 1 < h_;
        const Row* around[kMaxRing];  // input rows r - pad .. r + pad (+ 1 for a pair)
        for (int64_t i = 0; i < k_ + (pair ? 1 : 0); ++i) {
          const int64_t at = r + i - pad;
          around[i] = at >= 0 && at < h_ ? input_row(image * h_ + at) : nullptr;
        }
        if constexpr (!std::is_null_pointer_v<TwoRows>) {
          if (pair) {
            Out* const out[2] = {y + task * out_row, y + (task + 1) * out_row};
            two_rows(around, taps_, bias, w_, c_, stride, out);
            task += 2;
            continue;
          }
        }
        one_row(around, taps_, bias, w_, c_, stride, y + task * out_row);
        task += 1;
      }
    }
  }

  static constexpr int64_t kMaxRing = 6;  // a 5x5's five rows, a 3x3 pair's four
  int64_t ring_rows() const {
    return k_ + 1;
  }

  int64_t k_, in_channels_, begin_, n_ = 0, h_ = 0, w_ = 0, c_ = 0;
  int threads_;
  bool bf16_ = false;   // bfloat16 input and output
  bool widen_ = false;  // bfloat16 rows widened into a float32 ring per thread
  const float* taps_ = nullptr;
  const DepthwiseLoops& loops_ = depthwise_loops(active_isa());
  const ConvertLoops& convert_ = convert_loops(active_isa());
};

// Whether the convolution's input and output are of one type ours reads:
// float32, or bfloat16 where it computes in bfloat16 (not the positional
// encoding, which computes in float32 on the residual stream).
bool ours_reads_types(DType compute, DType input, DType output) {
  return input == output && (input == DType::kFloat32 || compute == DType::kBFloat16);
}

}  // namespace

std::unique_ptr<Kernel> make_depthwise_conv2d(const PrepareArgs& a) {
  if (!ours_reads_types(a.context.compute_dtype(a.graph, a.node), input_dtype(a, 0),
                        output_dtype(a)) ||
      !ours_can_run(a.node, a.shapes)) {
    return nullptr;
  }
  const int64_t channels = a.input_shape(0)[3];
  return std::make_unique<DepthwiseConv2dKernel>(a, channels, 0);
}

std::vector<Fusion> find_slice_conv_fusions(const Graph& graph, const std::vector<size_t>& steps,
                                            const std::vector<Shape>& shapes,
                                            const std::vector<int>& readers,
                                            const CpuContext& context) {
  std::vector<Fusion> found;
  const auto& nodes = graph.nodes();
  for (size_t i = 0; i + 1 < steps.size(); ++i) {
    const Node& slice = nodes[steps[i]];
    const Node& conv = nodes[steps[i + 1]];
    if (slice.op != Op::kChannelSlice || conv.inputs.empty() || conv.inputs[0] != slice.output ||
        readers[slice.output] != 1 || shapes[slice.inputs[0]].size() != 4 ||
        !ours_can_run(conv, shapes) ||
        !ours_reads_types(context.compute_dtype(graph, conv),
                          context.value_dtype(graph, slice.inputs[0]),
                          context.value_dtype(graph, conv.output))) {
      continue;
    }
    Fusion f{{steps[i], steps[i + 1]}, {slice.inputs[0]}, kSliceConvKind};
    f.inputs.insert(f.inputs.end(), conv.inputs.begin() + 1, conv.inputs.end());
    found.push_back(std::move(f));
    ++i;
  }
  return found;
}

std::unique_ptr<Kernel> make_slice_conv(const Graph& graph, const Fusion& fusion,
                                        const std::vector<Shape>& shapes, CpuContext& context) {
  const Node& slice = graph.nodes()[fusion.nodes[0]];
  const Node& conv = graph.nodes()[fusion.nodes[1]];
  const PrepareArgs a{graph, conv, shapes, context};
  return std::make_unique<DepthwiseConv2dKernel>(a, shapes[slice.inputs[0]][3], slice.slice_begin);
}

}  // namespace ravlt::runtime::cpu
