// The RALA core (spec §3.3) and the output gate: out = (res + lepe) * o.
//
// Per batch item and head ("task"), linear in the number of tokens L, four
// passes over the tokens:
//   1. qm = mean(elu(q) + 1);
//   2. logits <qm, elu(k) + 1> / sqrt(d), and their maximum;
//   3. with w = exp(logit - max): sum w, sum k' and sum rope(k')^T v, where
//      k' = (elu(k) + 1) w; the softmax normalisation and the factor L of
//      the reweighting are applied to the sums: KV = sum / sum w, kbar likewise;
//   4. per token, z = 1 / (<q', kbar> + 1e-6), res = rope(q') KV z.
// Passes 1-3 split each task's tokens into parts so that every thread has
// work even for one image with one head; partial sums are combined between
// passes. Inner loops: isa_kernels.inc, one build per instruction set.

#include <cmath>

#include "runtime/cpu/attention_kernel.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr int64_t kTokensPerChunk = 64;

class RalaKernel : public AttentionKernel {
 public:
  explicit RalaKernel(const PrepareArgs& a) : AttentionKernel(a), core_(rala_loops(active_isa())) {
    const int64_t tasks = n_ * heads_;
    // Split the tokens when there are fewer (image, head) tasks than the
    // session's threads, so that every thread has a part.
    const int64_t threads = a.context.threads;
    parts_ = std::max<int64_t>(1, std::min<int64_t>(threads / tasks, (h_ * w_) / 256));
    // Layout of the scratch: doubles first, then floats.
    const int64_t slots = tasks * parts_;
    doubles_ = static_cast<size_t>(slots * (d_ + d_ * d_ + 1));  // q / k sums, KV sums, weight sums
    floats_ = static_cast<size_t>(tasks * (d_ + d_ * d_ + d_ + h_ * w_ + 1));
  }

  size_t scratch_bytes() const override {
    return doubles_ * sizeof(double) + floats_ * sizeof(float);
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    float* out = output.f32();
    const float* qkvo = in[0].f32();
    const float* lepe = in[1].f32();
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_, tasks = n_ * heads_;
    const int64_t slots = tasks * parts_, dd = int64_t{d_} * d_;
    // Scratch: per slot (task, part) a d vector sum, a d x d sum, a weight sum;
    // per task qm (d), KV (d x d), kbar (d), L logits and the logit maximum.
    auto* vec_sum = reinterpret_cast<double*>(scratch);
    double* kv_sum = vec_sum + slots * d_;
    double* weight_sum = kv_sum + slots * dd;
    auto* qm = reinterpret_cast<float*>(weight_sum + slots);
    float* kv = qm + tasks * d_;
    float* kbar = kv + tasks * dd;
    float* logits = kbar + tasks * d_;
    float* max_logit = logits + tasks * l_count;
    const RopeView rope = rope_.view();
    const float scale = 1.0f / std::sqrt(static_cast<float>(d_));
    auto range = [&](int64_t part, int64_t* l0, int64_t* l1) {
      *l0 = l_count * part / parts_;
      *l1 = l_count * (part + 1) / parts_;
    };
    auto q_of = [&](int64_t t) {
      return qkvo + (t / heads_) * l_count * 4 * c + (t % heads_) * d_;
    };

    // Pass 1: sums of elu(q) + 1.
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < slots; ++s) {
      int64_t l0, l1;
      range(s % parts_, &l0, &l1);
      double* sum = vec_sum + s * d_;
      for (int e = 0; e < d_; ++e) sum[e] = 0.0;
      core_.rala_q_sum(q_of(s / parts_), 4 * c, l0, l1, d_, sum);
    }
    for (int64_t t = 0; t < tasks; ++t) {
      for (int e = 0; e < d_; ++e) {
        double total = 0.0;
        for (int64_t p = 0; p < parts_; ++p) total += vec_sum[(t * parts_ + p) * d_ + e];
        qm[t * d_ + e] = static_cast<float>(total / static_cast<double>(l_count)) * scale;
      }
    }
    // Pass 2: logits and their maximum (per slot in weight_sum, reused).
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < slots; ++s) {
      int64_t l0, l1;
      range(s % parts_, &l0, &l1);
      const int64_t t = s / parts_;
      weight_sum[s] =
          core_.rala_logits(q_of(t) + c, 4 * c, l0, l1, d_, qm + t * d_, logits + t * l_count);
    }
    for (int64_t t = 0; t < tasks; ++t) {
      float m = -INFINITY;
      for (int64_t p = 0; p < parts_; ++p)
        m = std::max(m, static_cast<float>(weight_sum[t * parts_ + p]));
      max_logit[t] = m;
    }
    // Pass 3: weight, key and KV sums.
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < slots; ++s) {
      int64_t l0, l1;
      range(s % parts_, &l0, &l1);
      const int64_t t = s / parts_;
      double* ksum = vec_sum + s * d_;
      double* kvs = kv_sum + s * dd;
      for (int e = 0; e < d_; ++e) ksum[e] = 0.0;
      for (int64_t i = 0; i < dd; ++i) kvs[i] = 0.0;
      weight_sum[s] = 0.0;
      const float* q = q_of(t);
      core_.rala_kv_sum(q + c, q + 2 * c, 4 * c, l0, l1, w_, d_, rope, logits + t * l_count,
                        max_logit[t], weight_sum + s, ksum, kvs);
    }
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      double w = 0.0;
      for (int64_t p = 0; p < parts_; ++p) w += weight_sum[t * parts_ + p];
      // KV = (1/L) sum rope(k')^T v with k' = (elu(k)+1) w L / sum w.
      const double inv = 1.0 / w;
      for (int64_t i = 0; i < dd; ++i) {
        double total = 0.0;
        for (int64_t p = 0; p < parts_; ++p) total += kv_sum[(t * parts_ + p) * dd + i];
        kv[t * dd + i] = static_cast<float>(total * inv);
      }
      for (int e = 0; e < d_; ++e) {
        double total = 0.0;
        for (int64_t p = 0; p < parts_; ++p) total += vec_sum[(t * parts_ + p) * d_ + e];
        kbar[t * d_ + e] = static_cast<float>(total * inv);
      }
    }
    // Pass 4: every token of every task independently.
    const int64_t chunks = (l_count + kTokensPerChunk - 1) / kTokensPerChunk;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t b = t / heads_, head = t % heads_;
        const float* q = q_of(t);
        const int64_t l0 = chunk * kTokensPerChunk;
        const int64_t l1 = std::min(l0 + kTokensPerChunk, l_count);
        core_.rala_output(q, q + 3 * c, 4 * c, lepe + b * l_count * c + head * d_, c,
                          out + b * l_count * c + head * d_, l0, l1, w_, d_, rope, kv + t * dd,
                          kbar + t * d_);
      }
    }
  }

 private:
  const RalaLoops& core_;  // the instruction set chosen at prepare
  int64_t parts_ = 1;
  size_t doubles_ = 0, floats_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> make_rala_attention(const PrepareArgs& args) {
  return std::make_unique<RalaKernel>(args);
}

}  // namespace ravlt::runtime::cpu
