// (N, H, W, C) -> (N, C): the mean over positions, accumulated in double,
// as float32 (a bfloat16 input is widened row by row).
#include <vector>

#include "ravlt/error.h"
#include "runtime/cpu/isa_kernels.h"
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class GlobalAvgPoolKernel : public Kernel {
 public:
  GlobalAvgPoolKernel(int64_t n, int64_t positions, int64_t channels)
      : n_(n), positions_(positions), channels_(channels), convert_(convert_loops(active_isa())) {}

  size_t scratch_bytes() const override {
    // The sums, then one widened row per image.
    return static_cast<size_t>(n_ * channels_) * (sizeof(double) + sizeof(float));
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    float* out = output.f32();
    auto* acc = reinterpret_cast<double*>(scratch);
    const int64_t c = channels_;
    float* wide = reinterpret_cast<float*>(acc + n_ * c);
    const bool widen = in[0].dtype == DType::kBFloat16;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_; ++b) {
      double* sum = acc + b * c;
      for (int64_t i = 0; i < c; ++i) sum[i] = 0.0;
      for (int64_t p = 0; p < positions_; ++p) {
        const float* row;
        if (widen) {
          const auto* src = static_cast<const uint16_t*>(in[0].data) + (b * positions_ + p) * c;
          convert_.bf16_to_f32(src, wide + b * c, c);
          row = wide + b * c;
        } else {
          row = in[0].f32() + (b * positions_ + p) * c;
        }
        for (int64_t i = 0; i < c; ++i) sum[i] += row[i];
      }
      for (int64_t i = 0; i < c; ++i)
        out[b * c + i] = static_cast<float>(sum[i] / static_cast<double>(positions_));
    }
  }

 private:
  int64_t n_, positions_, channels_;
  const ConvertLoops& convert_;
};

}  // namespace

std::unique_ptr<Kernel> make_global_avg_pool(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  if (output_dtype(args) != DType::kFloat32) {
    throw Error("node '" + args.node.name + "': pooled features are float32");
  }
  return std::make_unique<GlobalAvgPoolKernel>(x[0], x[1] * x[2], x[3]);
}

}  // namespace ravlt::runtime::cpu
