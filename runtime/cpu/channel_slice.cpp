// x[..., begin:end] copied out contiguously, in the elements' own type.
#include <cstring>

#include "ravlt/error.h"
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class ChannelSliceKernel : public Kernel {
 public:
  ChannelSliceKernel(int64_t rows, int64_t channels, int64_t begin, int64_t end, size_t element)
      : rows_(rows), channels_(channels), begin_(begin), width_(end - begin), element_(element) {}

  void run(const ConstView* in, View output, uint8_t*) override {
    auto* out = static_cast<uint8_t*>(output.data);
    const auto* x = static_cast<const uint8_t*>(in[0].data);
    const size_t row_bytes = static_cast<size_t>(width_) * element_;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows_; ++r) {
      std::memcpy(out + static_cast<size_t>(r) * row_bytes,
                  x + static_cast<size_t>(r * channels_ + begin_) * element_, row_bytes);
    }
  }

 private:
  int64_t rows_, channels_, begin_, width_;
  size_t element_;
};

}  // namespace

std::unique_ptr<Kernel> make_channel_slice(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  const DType type = input_dtype(args, 0);
  if (output_dtype(args) != type) {
    throw Error("node '" + args.node.name + "': a channel slice keeps its input's element type");
  }
  return std::make_unique<ChannelSliceKernel>(element_count(x) / x.back(), x.back(),
                                              args.node.slice_begin, args.node.slice_end,
                                              dtype_size(type));
}

}  // namespace ravlt::runtime::cpu
