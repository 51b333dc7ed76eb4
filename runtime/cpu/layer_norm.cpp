// LayerNorm over the channels of each position (channels-last: contiguous);
// the loop body is in isa_kernels.inc, built per instruction set.
#include "runtime/cpu/isa_kernels.h"
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(int64_t rows, int64_t channels, float epsilon)
      : rows_(rows),
        channels_(channels),
        epsilon_(epsilon),
        core_(layer_norm_loops(active_isa())) {}

  void run(const ConstView* in, View output, uint8_t*) override {
    float* out = output.f32();
    constexpr int64_t kRowsPerTask = 32;
    const int64_t tasks = (rows_ + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t r0 = t * kRowsPerTask;
      const int64_t r1 = r0 + kRowsPerTask < rows_ ? r0 + kRowsPerTask : rows_;
      core_.layer_norm(in[0].f32(), in[1].f32(), in[2].f32(), out, r0, r1, channels_, epsilon_);
    }
  }

 private:
  int64_t rows_, channels_;
  float epsilon_;
  const LayerNormLoops& core_;
};

}  // namespace

std::unique_ptr<Kernel> make_layer_norm(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  const int64_t channels = x.back();
  return std::make_unique<LayerNormKernel>(element_count(x) / channels, channels,
                                           args.node.epsilon);
}

}  // namespace ravlt::runtime::cpu
