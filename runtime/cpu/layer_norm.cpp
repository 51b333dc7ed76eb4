// LayerNorm over the channels of each position (channels-last: contiguous).
#include <cmath>

#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(int64_t rows, int64_t channels, float epsilon)
      : rows_(rows), channels_(channels), epsilon_(epsilon) {}

  void run(const float* const* in, float* out, uint8_t*) override {
    const float* x = in[0];
    const float* gamma = in[1];
    const float* beta = in[2];
    const int64_t c = channels_;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows_; ++r) {
      const float* row = x + r * c;
      float* dst = out + r * c;
      // Two passes (mean, then variance about it), as PyTorch computes it.
      float sum = 0.0f;
      for (int64_t i = 0; i < c; ++i) sum += row[i];
      const float mean = sum / static_cast<float>(c);
      float squares = 0.0f;
      for (int64_t i = 0; i < c; ++i) squares += (row[i] - mean) * (row[i] - mean);
      const float inv = 1.0f / std::sqrt(squares / static_cast<float>(c) + epsilon_);
      for (int64_t i = 0; i < c; ++i) dst[i] = (row[i] - mean) * inv * gamma[i] + beta[i];
    }
  }

 private:
  int64_t rows_, channels_;
  float epsilon_;
};

}  // namespace

std::unique_ptr<Kernel> make_layer_norm(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  const int64_t channels = x.back();
  return std::make_unique<LayerNormKernel>(element_count(x) / channels, channels,
                                           args.node.epsilon);
}

}  // namespace ravlt::runtime::cpu
