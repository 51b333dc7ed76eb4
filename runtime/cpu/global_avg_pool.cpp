// (N, H, W, C) -> (N, C): the mean over positions, accumulated in double.
#include <vector>

#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class GlobalAvgPoolKernel : public Kernel {
 public:
  GlobalAvgPoolKernel(int64_t n, int64_t positions, int64_t channels)
      : n_(n), positions_(positions), channels_(channels) {}

  size_t scratch_bytes() const override {
    return static_cast<size_t>(n_ * channels_) * sizeof(double);
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    float* out = output.f32();
    const float* x = in[0].f32();
    auto* acc = reinterpret_cast<double*>(scratch);
    const int64_t c = channels_;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < n_; ++b) {
      double* sum = acc + b * c;
      for (int64_t i = 0; i < c; ++i) sum[i] = 0.0;
      for (int64_t p = 0; p < positions_; ++p) {
        const float* row = x + (b * positions_ + p) * c;
        for (int64_t i = 0; i < c; ++i) sum[i] += row[i];
      }
      for (int64_t i = 0; i < c; ++i)
        out[b * c + i] = static_cast<float>(sum[i] / static_cast<double>(positions_));
    }
  }

 private:
  int64_t n_, positions_, channels_;
};

}  // namespace

std::unique_ptr<Kernel> make_global_avg_pool(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  return std::make_unique<GlobalAvgPoolKernel>(x[0], x[1] * x[2], x[3]);
}

}  // namespace ravlt::runtime::cpu
