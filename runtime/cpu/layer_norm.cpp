// LayerNorm over the channels of each position (channels-last: contiguous);
// the loop body is in layer_norm_loops.inc, built per instruction set. A
// float32 input into a bfloat16 output (the residual stream into the next
// GEMM, as bfloat16 plans have it) is normalised straight into the output;
// any other typed pair widens each task's rows into a float32 buffer,
// normalises there and narrows back. Statistics in float32 always.
#include <omp.h>

#include "runtime/cpu/isa_kernels.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr int64_t kRowsPerTask = 32;

class LayerNormKernel : public Kernel {
 public:
  LayerNormKernel(int64_t rows, int64_t channels, float epsilon, bool typed, int threads)
      : rows_(rows),
        channels_(channels),
        epsilon_(epsilon),
        core_(layer_norm_loops(active_isa())),
        convert_(convert_loops(active_isa())),
        threads_(threads) {
    if (typed) buffers_ = ThreadBuffers(threads, kRowsPerTask * channels);
  }

  size_t scratch_bytes() const override { return buffers_.bytes(); }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    const float* gamma = in[1].f32();
    const float* beta = in[2].f32();
    if (in[0].dtype == DType::kFloat32 && output.dtype == DType::kBFloat16) {
      const float* x = in[0].f32();
      auto* out = static_cast<uint16_t*>(output.data);
      return for_each_task([&](int64_t r0, int64_t r1) {
        core_.layer_norm_bf16_out(x, gamma, beta, out, r0, r1, channels_, epsilon_);
      });
    }
    if (buffers_.threads() == 0) {
      const float* x = in[0].f32();
      float* out = output.f32();
      return for_each_task([&](int64_t r0, int64_t r1) {
        core_.layer_norm(x, gamma, beta, out, r0, r1, channels_, epsilon_);
      });
    }
    for_each_task([&](int64_t r0, int64_t r1) {
      float* buffer = buffers_.mine(scratch);
      widen_rows(convert_, in[0], channels_, 0, channels_, 0, r0, r1, buffer);
      float* rows = rebase(buffer, r0, channels_);  // normalised in place
      core_.layer_norm(rows, gamma, beta, rows, r0, r1, channels_, epsilon_);
      narrow_rows(convert_, buffer, output, channels_, 0, channels_, 0, r0, r1);
    });
  }

 private:
  // body(r0, r1) over the rows, at most kRowsPerTask at a time: each
  // thread an equal, contiguous share, as the depthwise convolution before
  // norm1 splits its image rows, so that a thread mostly reads rows it
  // wrote itself (32-row tasks dealt out in order gave one thread 128 of
  // stage 3's 196 rows: LayerNorm 0.47 -> 0.43 ms a run at RAVLT-T batch 1,
  // three alternated pairs, AMD Zen 5).
  template <typename Body>
  void for_each_task(Body&& body) const {
#pragma omp parallel num_threads(threads_)
    {
      const int64_t count = omp_get_num_threads(), me = omp_get_thread_num();
      const int64_t end = rows_ * (me + 1) / count;
      for (int64_t r0 = rows_ * me / count; r0 < end; r0 += kRowsPerTask) {
        body(r0, r0 + kRowsPerTask < end ? r0 + kRowsPerTask : end);
      }
    }
  }

  int64_t rows_, channels_;
  float epsilon_;
  const LayerNormLoops& core_;
  const ConvertLoops& convert_;
  int threads_;
  ThreadBuffers buffers_;  // none when input and output are float32
};

}  // namespace

std::unique_ptr<Kernel> make_layer_norm(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  const int64_t channels = x.back();
  const bool typed = !all_float32({input_dtype(args, 0), output_dtype(args)});
  return std::make_unique<LayerNormKernel>(element_count(x) / channels, channels, args.node.epsilon,
                                           typed, args.context.threads);
}

}  // namespace ravlt::runtime::cpu
