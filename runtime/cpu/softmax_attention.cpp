// Softmax attention with RoPE (spec §3.4) and the output gate:
// out = (softmax(rope(q) rope(k)^T / sqrt(d)) v + lepe) * o.
//
// Keys are rotated once per run into scratch, transposed (d x L per head,
// L padded to a whole key block); each query then streams over blocks of keys with an
// online softmax, so no L x L matrix is ever stored. Inner loops:
// isa_kernels.inc.
#include "runtime/cpu/attention_kernel.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr int64_t kQueriesPerTask = 16;

class SoftmaxAttentionKernel : public AttentionKernel {
 public:
  explicit SoftmaxAttentionKernel(const PrepareArgs& a)
      : AttentionKernel(a), core_(softmax_loops(active_isa())) {}

  size_t scratch_bytes() const override {
    return static_cast<size_t>(n_ * heads_ * key_stride(h_ * w_) * d_) * sizeof(float);
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    float* out = output.f32();
    const float* qkvo = in[0].f32();
    const float* lepe = in[1].f32();
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_, tasks = n_ * heads_;
    auto* keys = reinterpret_cast<float*>(scratch);
    const RopeView rope = rope_.view();

#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / heads_, head = t % heads_;
      core_.rotate_keys(qkvo + b * l_count * 4 * c + c + head * d_, 4 * c, l_count, w_, d_, rope,
                        keys + t * key_stride(l_count) * d_);
    }
    const int64_t chunks = (l_count + kQueriesPerTask - 1) / kQueriesPerTask;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t b = t / heads_, head = t % heads_;
        const float* q = qkvo + b * l_count * 4 * c + head * d_;
        const int64_t l0 = chunk * kQueriesPerTask;
        const int64_t l1 = l0 + kQueriesPerTask < l_count ? l0 + kQueriesPerTask : l_count;
        core_.softmax_rows(q, q + 2 * c, q + 3 * c, 4 * c, lepe + b * l_count * c + head * d_, c,
                           out + b * l_count * c + head * d_, l0, l1, l_count, w_, d_, rope,
                           keys + t * key_stride(l_count) * d_);
      }
    }
  }

 private:
  const SoftmaxLoops& core_;  // the instruction set chosen at prepare
};

}  // namespace

std::unique_ptr<Kernel> make_softmax_attention(const PrepareArgs& args) {
  return std::make_unique<SoftmaxAttentionKernel>(args);
}

}  // namespace ravlt::runtime::cpu
