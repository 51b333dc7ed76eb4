// (N, C, H, W) -> (N, H, W, C): the graph input into the canonical layout.
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class ToChannelsLastKernel : public Kernel {
 public:
  explicit ToChannelsLastKernel(const Shape& x) : n_(x[0]), c_(x[1]), h_(x[2]), w_(x[3]) {}

  void run(const ConstView* in, View output, uint8_t*) override {
    float* out = output.f32();
    const float* x = in[0].f32();
    const int64_t plane = h_ * w_;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n_; ++b) {
      for (int64_t p = 0; p < plane; ++p) {
        const float* src = x + b * c_ * plane + p;
        float* dst = out + (b * plane + p) * c_;
        for (int64_t c = 0; c < c_; ++c) dst[c] = src[c * plane];
      }
    }
  }

 private:
  int64_t n_, c_, h_, w_;
};

}  // namespace

std::unique_ptr<Kernel> make_to_channels_last(const PrepareArgs& args) {
  return std::make_unique<ToChannelsLastKernel>(args.input_shape(0));
}

}  // namespace ravlt::runtime::cpu
