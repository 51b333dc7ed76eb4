// x[..., begin:end] copied out contiguously.
#include <cstring>

#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class ChannelSliceKernel : public Kernel {
 public:
  ChannelSliceKernel(int64_t rows, int64_t channels, int64_t begin, int64_t end)
      : rows_(rows), channels_(channels), begin_(begin), width_(end - begin) {}

  void run(const ConstView* in, View output, uint8_t*) override {
    float* out = output.f32();
    const float* x = in[0].f32();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows_; ++r) {
      std::memcpy(out + r * width_, x + r * channels_ + begin_,
                  static_cast<size_t>(width_) * sizeof(float));
    }
  }

 private:
  int64_t rows_, channels_, begin_, width_;
};

}  // namespace

std::unique_ptr<Kernel> make_channel_slice(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  return std::make_unique<ChannelSliceKernel>(element_count(x) / x.back(), x.back(),
                                              args.node.slice_begin, args.node.slice_end);
}

}  // namespace ravlt::runtime::cpu
