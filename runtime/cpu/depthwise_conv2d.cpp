// Depthwise convolutions on our own rows (depthwise_loops.inc), the rows
// split between the session's threads. oneDNN 2.6's depthwise kernel
// (brdgmm_dw) ran RAVLT-T's at 10-40 % of the GEMM rate on Zen 4; ours
// keeps 8 output columns in registers and reads each input column once per
// tap row.
#include "runtime/cpu/depthwise_conv2d.h"

#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class DepthwiseConv2dKernel : public Kernel {
 public:
  DepthwiseConv2dKernel(const PrepareArgs& a, int kernel)
      : k_(kernel), threads_(a.context.threads) {
    const Shape& x = a.input_shape(0);
    n_ = x[0];
    h_ = x[1];
    w_ = x[2];
    c_ = x[3];
    // The stored (C, 1, K, K) weights as (K, K, C), a register of channels
    // per tap, through the weight cache (the mapped original is released).
    const dnnl::memory::dims dims = {c_, 1, 1, k_, k_};
    const dnnl::memory::desc stored(dims, dt::f32, tag::goihw);
    const dnnl::memory::desc taps(dims, dt::f32,
                                  dnnl::memory::dims{1, k_ * k_ * c_, k_ * k_ * c_, k_ * c_, c_});
    taps_ = static_cast<const float*>(packed_weight(a, 1, stored, taps));
  }

  size_t scratch_bytes() const override { return 0; }

  void run(const ConstView* in, View output, uint8_t*) override {
    const float* x = in[0].f32();
    const float* bias = in[2].f32();
    float* y = output.f32();
    const int64_t row = w_ * c_, pad = k_ / 2;
    const auto kernel_row = k_ == 3 ? loops_.depthwise3x3_row : loops_.depthwise5x5_row;
    // A run of output rows per thread.
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t task = 0; task < n_ * h_; ++task) {
      const int64_t image = task / h_, r = task % h_;
      const float* around[5];
      for (int64_t i = 0; i < k_; ++i) {
        const int64_t at = r + i - pad;
        around[i] = at >= 0 && at < h_ ? x + (image * h_ + at) * row : nullptr;
      }
      kernel_row(around, taps_, bias, w_, c_, c_, y + task * row);
    }
  }

 private:
  int64_t k_, n_ = 0, h_ = 0, w_ = 0, c_ = 0;
  int threads_;
  const float* taps_ = nullptr;
  const DepthwiseLoops& loops_ = depthwise_loops(active_isa());
};

}  // namespace

std::unique_ptr<Kernel> make_depthwise_conv2d(const PrepareArgs& a) {
  const Node& n = a.node;
  const ConvAttrs& c = n.conv;
  const Shape& x = a.input_shape(0);
  const Shape& w = a.input_shape(1);
  const Shape& y = a.output_shape();
  const int k = c.kernel_h;
  const bool depthwise = x.size() == 4 && w.size() == 4 && y == x && c.groups == x[3] &&
                         w[0] == x[3] && w[1] == 1 && w[2] == k && w[3] == k;
  const bool same_size = (k == 3 || k == 5) && c.kernel_w == k && c.stride_h == 1 &&
                         c.stride_w == 1 && c.pad_h == k / 2 && c.pad_w == k / 2;
  const bool float32 = a.context.compute_dtype(a.graph, n) == DType::kFloat32 &&
                       input_dtype(a, 0) == DType::kFloat32 && output_dtype(a) == DType::kFloat32;
  if (!depthwise || !same_size || !float32 || n.activation != Activation::kNone) return nullptr;
  // Where ours is the faster, measured against oneDNN's in one process
  // (2 threads, Zen 4, alternated, medians): 0.58-0.90x at RAVLT's
  // 56x56x64, 28x28x128, 14x14x256 and 14x14x896 (3x3 and 5x5), 0.71-0.91x
  // at most 800x1216 stages, 1.03x at 7x7x1792; slower at 512 channels
  // (1.14-1.26x at 25x38x512, 1.2x at 7x7x512: a pixel is 2 KB, so the
  // columns a block reads and writes alias every 4 KB). Decided by the
  // model alone, not the input's size: a weight's layout must not depend
  // on it (one packed copy, and the packed-weight file serves every size).
  if (x[3] % 512 == 0) return nullptr;
  return std::make_unique<DepthwiseConv2dKernel>(a, k);
}

}  // namespace ravlt::runtime::cpu
