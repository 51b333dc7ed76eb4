// Softmax attention with RoPE (spec §3.4) and the output gate:
// out = (softmax(rope(q) rope(k)^T / sqrt(d)) v + lepe) * o.
//
// Per (image, head), keys are rotated once per run into scratch, in blocks
// of keys, and values copied beside them into contiguous rows; tiles of
// queries then stream over the key blocks with an online softmax, so no
// L x L matrix is ever stored. Inner loops: softmax_attention_loops.inc.
#include "runtime/cpu/attention_kernel.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr int64_t kQueriesPerTask = 64;  // one tile of the inner loops

class SoftmaxAttentionKernel : public AttentionKernel {
 public:
  explicit SoftmaxAttentionKernel(const PrepareArgs& a)
      : AttentionKernel(a), core_(softmax_loops(active_isa())) {}

  size_t scratch_bytes() const override {
    return static_cast<size_t>(n_ * heads_ * 2 * per_head()) * sizeof(float);
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    float* out = output.f32();
    const float* qkvo = in[0].f32();
    const float* lepe = in[1].f32();
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_, tasks = n_ * heads_;
    auto* buffers = reinterpret_cast<float*>(scratch);  // per task: keys, then values
    const RopeView rope = rope_.view();

#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / heads_, head = t % heads_;
      const float* k = qkvo + b * l_count * 4 * c + c + head * d_;
      float* kt = buffers + t * 2 * per_head();
      core_.prepare_keys_values(k, k + c, 4 * c, l_count, w_, d_, rope, kt, kt + per_head());
    }
    const int64_t chunks = (l_count + kQueriesPerTask - 1) / kQueriesPerTask;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t b = t / heads_, head = t % heads_;
        const float* q = qkvo + b * l_count * 4 * c + head * d_;
        const int64_t l0 = chunk * kQueriesPerTask;
        const int64_t l1 = l0 + kQueriesPerTask < l_count ? l0 + kQueriesPerTask : l_count;
        const float* kt = buffers + t * 2 * per_head();
        core_.softmax_rows(q, q + 3 * c, 4 * c, lepe + b * l_count * c + head * d_, c,
                           out + b * l_count * c + head * d_, l0, l1, l_count, w_, d_, rope, kt,
                           kt + per_head());
      }
    }
  }

 private:
  int64_t per_head() const {
    return softmax_buffer_floats(h_ * w_, d_);
  }

  const SoftmaxLoops& core_;  // the instruction set chosen at prepare
};

}  // namespace

std::unique_ptr<Kernel> make_softmax_attention(const PrepareArgs& args) {
  return std::make_unique<SoftmaxAttentionKernel>(args);
}

}  // namespace ravlt::runtime::cpu
