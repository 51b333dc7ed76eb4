// (N, H, W, C) -> (N, C, H, W): a feature map handed out as a model output.
#include <algorithm>

#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class ToChannelsFirstKernel : public Kernel {
 public:
  explicit ToChannelsFirstKernel(const Shape& x) : n_(x[0]), plane_(x[1] * x[2]), c_(x[3]) {}

  void run(const ConstView* in, View output, uint8_t*) override {
    float* out = output.f32();
    const float* x = in[0].f32();
    // Tiles of positions: the tile's rows of x stay in cache while each
    // channel's run of outputs is written contiguously.
    constexpr int64_t kTile = 32;
    const int64_t tiles = (plane_ + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n_; ++b) {
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t p0 = t * kTile, p1 = std::min(plane_, p0 + kTile);
        const float* src = x + b * plane_ * c_;
        float* dst = out + b * c_ * plane_;
        for (int64_t c = 0; c < c_; ++c) {
          for (int64_t p = p0; p < p1; ++p) dst[c * plane_ + p] = src[p * c_ + c];
        }
      }
    }
  }

 private:
  int64_t n_, plane_, c_;
};

}  // namespace

std::unique_ptr<Kernel> make_to_channels_first(const PrepareArgs& args) {
  return std::make_unique<ToChannelsFirstKernel>(args.input_shape(0));
}

}  // namespace ravlt::runtime::cpu
