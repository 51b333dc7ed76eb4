// The RALA core (spec §3.3) and the output gate: out = (res + lepe) * o.
//
// Per batch item and head, linear in the number of tokens L:
//   phase A: one pass for qm = mean(elu(q) + 1), one for the softmax of
//            <qm, elu(k) + 1> / sqrt(d) over tokens, one to accumulate
//            kbar = mean(k') and KV = (1/L) sum rope(k')^T v, k' = reweighted keys;
//   phase B: per token, z = 1 / (<q', kbar> + 1e-6) and res = rope(q') KV z.
// Reductions over tokens accumulate in double.
#include <algorithm>
#include <cmath>

#include "ravlt/error.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/rope.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr int kMaxHeadDim = 512;

inline float elu_plus_one(float a) {
  return a > 0.0f ? a + 1.0f : std::exp(a);
}

class RalaKernel : public Kernel {
 public:
  RalaKernel(const PrepareArgs& a)
      : n_(a.output_shape()[0]),
        h_(a.output_shape()[1]),
        w_(a.output_shape()[2]),
        heads_(a.node.heads),
        d_(a.node.head_dim),
        rope_(a.graph.values()[a.node.inputs[2]].data, a.node.head_dim, h_, w_) {
    if (d_ > kMaxHeadDim) throw Error("node '" + a.node.name + "': head dimension above 512");
    const size_t floats = static_cast<size_t>(n_ * heads_ * (d_ * d_ + d_ + h_ * w_));
    kv_acc_offset_ = (floats * sizeof(float) + 63) / 64 * 64;
  }

  // Per task (batch item, head): KV (d x d), kbar (d) and L softmax logits
  // in float, then KV's double accumulator.
  size_t scratch_bytes() const override {
    return kv_acc_offset_ + static_cast<size_t>(n_ * heads_ * d_ * d_) * sizeof(double);
  }

  void run(const float* const* in, float* out, uint8_t* scratch) override {
    const float* qkvo = in[0];
    const float* lepe = in[1];
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_, tasks = n_ * heads_;
    const int64_t per_task = d_ * d_ + d_ + l_count;
    auto* state = reinterpret_cast<float*>(scratch);

#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / heads_, head = t % heads_;
      const float* base = qkvo + b * l_count * 4 * c + head * d_;
      float* kv = state + t * per_task;
      float* kbar = kv + d_ * d_;
      float* logits = kbar + d_;
      double acc[kMaxHeadDim];
      // qm = mean over tokens of elu(q) + 1
      std::fill(acc, acc + d_, 0.0);
      for (int64_t l = 0; l < l_count; ++l) {
        const float* q = base + l * 4 * c;
        for (int e = 0; e < d_; ++e) acc[e] += elu_plus_one(q[e]);
      }
      float qm[kMaxHeadDim];
      for (int e = 0; e < d_; ++e)
        qm[e] = static_cast<float>(acc[e] / static_cast<double>(l_count));
      // softmax over tokens of <qm, k'> / sqrt(d)
      const float scale = 1.0f / std::sqrt(static_cast<float>(d_));
      float max_logit = -INFINITY;
      for (int64_t l = 0; l < l_count; ++l) {
        const float* k = base + l * 4 * c + c;
        float dot = 0.0f;
        for (int e = 0; e < d_; ++e) dot += qm[e] * elu_plus_one(k[e]);
        logits[l] = dot * scale;
        max_logit = std::max(max_logit, logits[l]);
      }
      double denominator = 0.0;
      for (int64_t l = 0; l < l_count; ++l) {
        logits[l] = std::exp(logits[l] - max_logit);
        denominator += logits[l];
      }
      // k'_l = (elu(k) + 1) * softmax_l * L; kbar = mean k'; KV = (1/L) sum rope(k')^T v
      double* kv_acc = reinterpret_cast<double*>(scratch + kv_acc_offset_) + t * d_ * d_;
      std::fill(acc, acc + d_, 0.0);
      std::fill(kv_acc, kv_acc + d_ * d_, 0.0);
      const double reweight = static_cast<double>(l_count) / denominator;
      for (int64_t l = 0; l < l_count; ++l) {
        const float* k = base + l * 4 * c + c;
        const float* v = base + l * 4 * c + 2 * c;
        float kw[kMaxHeadDim], kr[kMaxHeadDim];
        const float weight = static_cast<float>(logits[l] * reweight);
        for (int e = 0; e < d_; ++e) {
          kw[e] = elu_plus_one(k[e]) * weight;
          acc[e] += kw[e];
        }
        rope_.rotate(kw, l / w_, l % w_, kr);
        for (int r = 0; r < d_; ++r) {
          const double kr_r = kr[r];
          double* dst = kv_acc + r * d_;
          for (int e = 0; e < d_; ++e) dst[e] += kr_r * v[e];
        }
      }
      for (int64_t i = 0; i < d_ * d_; ++i)
        kv[i] = static_cast<float>(kv_acc[i] / static_cast<double>(l_count));
      for (int e = 0; e < d_; ++e)
        kbar[e] = static_cast<float>(acc[e] / static_cast<double>(l_count));
    }

    // Phase B: every token of every task independently.
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t l = 0; l < l_count; ++l) {
        const int64_t b = t / heads_, head = t % heads_;
        const float* kv = state + t * per_task;
        const float* kbar = kv + d_ * d_;
        const float* row = qkvo + (b * l_count + l) * 4 * c + head * d_;
        float qp[kMaxHeadDim], qr[kMaxHeadDim];
        float dot = 0.0f;
        for (int e = 0; e < d_; ++e) {
          qp[e] = elu_plus_one(row[e]);
          dot += qp[e] * kbar[e];
        }
        const float z = 1.0f / (dot + 1e-6f);
        rope_.rotate(qp, l / w_, l % w_, qr);
        float res[kMaxHeadDim];
        std::fill(res, res + d_, 0.0f);
        for (int r = 0; r < d_; ++r) {
          const float qv = qr[r];
          const float* kv_row = kv + r * d_;
          for (int e = 0; e < d_; ++e) res[e] += qv * kv_row[e];
        }
        const float* o = row + 3 * c;
        const float* lp = lepe + (b * l_count + l) * c + head * d_;
        float* dst = out + (b * l_count + l) * c + head * d_;
        for (int e = 0; e < d_; ++e) dst[e] = (res[e] * z + lp[e]) * o[e];
      }
    }
  }

 private:
  int64_t n_, h_, w_;
  int heads_, d_;
  RopeTables rope_;
  size_t kv_acc_offset_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> make_rala_attention(const PrepareArgs& args) {
  return std::make_unique<RalaKernel>(args);
}

}  // namespace ravlt::runtime::cpu
