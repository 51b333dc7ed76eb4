// Softmax attention with RoPE (spec §3.4) and the output gate:
// out = (softmax(rope(q) rope(k)^T / sqrt(d)) v + lepe) * o.
//
// Keys are rotated once per plan run into scratch (L x d per head, the size
// of K itself); each query then streams over the keys in blocks with an
// online softmax, so no L x L matrix is ever stored.
#include <algorithm>
#include <cmath>

#include "ravlt/error.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/rope.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr int kMaxHeadDim = 512;
constexpr int64_t kKeyBlock = 64;

class SoftmaxAttentionKernel : public Kernel {
 public:
  explicit SoftmaxAttentionKernel(const PrepareArgs& a)
      : n_(a.output_shape()[0]),
        h_(a.output_shape()[1]),
        w_(a.output_shape()[2]),
        heads_(a.node.heads),
        d_(a.node.head_dim),
        rope_(a.graph.values()[a.node.inputs[2]].data, a.node.head_dim, h_, w_) {
    if (d_ > kMaxHeadDim) throw Error("node '" + a.node.name + "': head dimension above 512");
  }

  size_t scratch_bytes() const override {
    return static_cast<size_t>(n_ * heads_ * h_ * w_ * d_) * sizeof(float);
  }

  void run(const float* const* in, float* out, uint8_t* scratch) override {
    const float* qkvo = in[0];
    const float* lepe = in[1];
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_, tasks = n_ * heads_;
    auto* rotated_keys = reinterpret_cast<float*>(scratch);

#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t m = 0; m < l_count; ++m) {
        const int64_t b = t / heads_, head = t % heads_;
        const float* k = qkvo + (b * l_count + m) * 4 * c + c + head * d_;
        rope_.rotate(k, m / w_, m % w_, rotated_keys + (t * l_count + m) * d_);
      }
    }

    const float scale = 1.0f / std::sqrt(static_cast<float>(d_));
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t l = 0; l < l_count; ++l) {
        const int64_t b = t / heads_, head = t % heads_;
        const float* row = qkvo + (b * l_count + l) * 4 * c + head * d_;
        const float* keys = rotated_keys + t * l_count * d_;
        const float* values = qkvo + b * l_count * 4 * c + 2 * c + head * d_;
        float q[kMaxHeadDim], acc[kMaxHeadDim], scores[kKeyBlock];
        rope_.rotate(row, l / w_, l % w_, q);
        for (int e = 0; e < d_; ++e) q[e] *= scale;
        std::fill(acc, acc + d_, 0.0f);
        float running_max = -INFINITY, running_sum = 0.0f;
        for (int64_t m0 = 0; m0 < l_count; m0 += kKeyBlock) {
          const int64_t count = std::min(kKeyBlock, l_count - m0);
          float block_max = -INFINITY;
          for (int64_t j = 0; j < count; ++j) {
            const float* k = keys + (m0 + j) * d_;
            float dot = 0.0f;
            for (int e = 0; e < d_; ++e) dot += q[e] * k[e];
            scores[j] = dot;
            block_max = std::max(block_max, dot);
          }
          const float new_max = std::max(running_max, block_max);
          const float correction = std::exp(running_max - new_max);
          running_sum *= correction;
          for (int e = 0; e < d_; ++e) acc[e] *= correction;
          for (int64_t j = 0; j < count; ++j) {
            const float p = std::exp(scores[j] - new_max);
            running_sum += p;
            const float* v = values + (m0 + j) * 4 * c;
            for (int e = 0; e < d_; ++e) acc[e] += p * v[e];
          }
          running_max = new_max;
        }
        const float inv = 1.0f / running_sum;
        const float* o = row + 3 * c;
        const float* lp = lepe + (b * l_count + l) * c + head * d_;
        float* dst = out + (b * l_count + l) * c + head * d_;
        for (int e = 0; e < d_; ++e) dst[e] = (acc[e] * inv + lp[e]) * o[e];
      }
    }
  }

 private:
  int64_t n_, h_, w_;
  int heads_, d_;
  RopeTables rope_;
};

}  // namespace

std::unique_ptr<Kernel> make_softmax_attention(const PrepareArgs& args) {
  return std::make_unique<SoftmaxAttentionKernel>(args);
}

}  // namespace ravlt::runtime::cpu
