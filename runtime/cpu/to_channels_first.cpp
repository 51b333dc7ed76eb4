// (N, H, W, C) -> (N, C, H, W): a feature map handed out as a model output
// (always float32; a bfloat16 input is widened tile by tile).
#include <algorithm>

#include "ravlt/error.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

class ToChannelsFirstKernel : public Kernel {
 public:
  // Tiles of positions: the tile's rows of x stay in cache while each
  // channel's run of outputs is written contiguously.
  static constexpr int64_t kTile = 32;

  ToChannelsFirstKernel(const Shape& x, DType input, int threads)
      : n_(x[0]), plane_(x[1] * x[2]), c_(x[3]), convert_(convert_loops(active_isa())) {
    if (input != DType::kFloat32) buffers_ = ThreadBuffers(threads, kTile * c_);
  }

  size_t scratch_bytes() const override { return buffers_.bytes(); }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    float* out = output.f32();
    const bool widen = in[0].dtype != DType::kFloat32;
    const int64_t tiles = (plane_ + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads())
    for (int64_t b = 0; b < n_; ++b) {
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t p0 = t * kTile, p1 = std::min(plane_, p0 + kTile);
        // Positions p0..p1 of image b as float32, position p at rows + p * c.
        const float* rows = widen ? widen_rows(convert_, in[0], c_, 0, c_, b * plane_, p0, p1,
                                               buffers_.mine(scratch))
                                        .base
                                  : in[0].f32() + b * plane_ * c_;
        float* dst = out + b * c_ * plane_;
        for (int64_t c = 0; c < c_; ++c) {
          for (int64_t p = p0; p < p1; ++p) dst[c * plane_ + p] = rows[p * c_ + c];
        }
      }
    }
  }

 private:
  int threads() const {
    return buffers_.threads() > 0 ? buffers_.threads() : omp_get_max_threads();
  }

  int64_t n_, plane_, c_;
  const ConvertLoops& convert_;
  ThreadBuffers buffers_;
};

}  // namespace

std::unique_ptr<Kernel> make_to_channels_first(const PrepareArgs& args) {
  if (output_dtype(args) != DType::kFloat32) {
    throw Error("node '" + args.node.name + "': NCHW feature maps are float32");
  }
  return std::make_unique<ToChannelsFirstKernel>(args.input_shape(0), input_dtype(args, 0),
                                                 args.context.threads);
}

}  // namespace ravlt::runtime::cpu
