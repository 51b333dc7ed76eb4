// The RALA core (spec §3.3) and the output gate: out = (res + lepe) * o.
//
// Per batch item and head ("task"), linear in the number of tokens L, three
// passes over the tokens:
//   1. qm = mean(elu(q) + 1);
//   2. logits <qm, elu(k) + 1> / sqrt(d) and, with their running maximum
//      (the sums rescaled where it rises, as in flash attention) and
//      w = exp(logit - max): sum w, sum k' and sum rope(k')^T v, where
//      k' = (elu(k) + 1) w; the softmax normalisation and the factor L of
//      the reweighting are applied to the sums: KV = sum / sum w, kbar likewise;
//   3. per token, z = 1 / (<q', kbar> + 1e-6), res = rope(q') KV z.
// Each pass streams its columns of the qkvo rows (a quarter of them, but
// whole cache lines and the prefetchers' neighbours come along: at 800x1216
// a pass costs about as much as reading all of qkvo from memory), hence
// one pass for the logits and the sums rather than two.
// How the work is shared (`whole_tasks_`): with at least as many tasks as
// threads (a batch, or many heads), every thread runs all three passes of
// whole tasks, one after the other, so that a task's rows are still in the
// caches for its later passes (RAVLT-T's stage 1 at batch 8: 9 ms per node
// when every pass went over the whole batch first). Otherwise passes 1-2
// split each task's tokens into parts so that every thread has work even
// for one image with one head; partial sums are combined between passes,
// and pass 3 gives every thread an equal run of tokens. Inner loops:
// rala_attention_loops.inc, one build per instruction set, on float32 or
// bfloat16 activations (the loops widen bfloat16 as they read it). Where
// the operands' types differ (a bfloat16 plan that hands this node's
// output out in float32) every pass works on chunks of tokens widened into
// float32 buffers of its thread (typed_rows.h). Sums, logits and KV stay
// float32/double as in float32. Reading bfloat16 in the loops rather than
// through those buffers: RAVLT-S in bfloat16, batch 1, 2 threads on an
// Emerald Rapids Xeon, RalaAttention 0.74x (3.5 -> 2.6 ms a run, 7
// alternated rounds).

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "runtime/cpu/attention_kernel.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr int64_t kTokensPerChunk = 64;
constexpr int64_t kMaxParts = 64;  // token parts per task, however many threads

class RalaKernel : public AttentionKernel {
 public:
  explicit RalaKernel(const PrepareArgs& a)
      : AttentionKernel(a),
        core_(rala_loops(active_isa())),
        convert_(convert_loops(active_isa())),
        threads_(a.context.threads) {
    const int64_t tasks = n_ * heads_;
    const int64_t threads = a.context.threads;
    // Operands of one type go to the loops as they are; else per thread a
    // buffer for q, o, lepe and the output of one chunk.
    const DType qkvo = input_dtype(a, 0);
    bf16_ = qkvo == DType::kBFloat16 && input_dtype(a, 1) == qkvo && output_dtype(a) == qkvo;
    if (!bf16_ && !all_float32({qkvo, input_dtype(a, 1), output_dtype(a)})) {
      buffers_ = ThreadBuffers(a.context.threads, 4 * kTokensPerChunk * d_);
    }
    // Whole tasks per thread where they keep every thread busy.
    whole_tasks_ = whole_tasks_per_thread(tasks, threads);
    // Else split the tokens when there are fewer (image, head) tasks than
    // the session's threads, so that every thread has a part.
    parts_ = whole_tasks_
                 ? 1
                 : std::max<int64_t>(1, std::min({threads / tasks, (h_ * w_) / 256, kMaxParts}));
    // Layout of the scratch: doubles first, then floats.
    const int64_t slots = tasks * parts_;
    // Per slot: q / k sums, KV sums, weight sums, logit maxima.
    doubles_ = static_cast<size_t>(slots * (d_ + d_ * d_ + 2));
    floats_ = static_cast<size_t>(tasks * (d_ + d_ * d_ + d_));  // qm, KV, kbar
  }

  size_t scratch_bytes() const override {
    return doubles_ * sizeof(double) + floats_ * sizeof(float) + buffers_.bytes();
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_, tasks = n_ * heads_;
    const int64_t slots = tasks * parts_, dd = int64_t{d_} * d_;
    // Scratch: per slot (task, part) a d vector sum, a d x d sum, a weight
    // sum and a logit maximum; per task qm (d), KV (d x d) and kbar (d);
    // then the threads' buffers (typed operands only).
    auto* vec_sum = reinterpret_cast<double*>(scratch);
    double* kv_sum = vec_sum + slots * d_;
    double* weight_sum = kv_sum + slots * dd;
    double* slot_max = weight_sum + slots;
    auto* qm = reinterpret_cast<float*>(slot_max + slots);
    float* kv = qm + tasks * d_;
    float* kbar = kv + tasks * dd;
    uint8_t* buffer_scratch = scratch + doubles_ * sizeof(double) + floats_ * sizeof(float);
    const bool typed = buffers_.threads() > 0;
    const RopeView rope = rope_.view();
    const float scale = 1.0f / std::sqrt(static_cast<float>(d_));
    auto range = [&](int64_t part, int64_t* l0, int64_t* l1) {
      *l0 = l_count * part / parts_;
      *l1 = l_count * (part + 1) / parts_;
    };
    // Column of q (which 0), k (1), v (2) or o (3) of task t's head in the
    // qkvo rows (4C elements per token).
    auto column = [&](int64_t t, int which) { return which * c + (t % heads_) * d_; };
    // Operands of one type: task t's q/k/v/o, token l at + l * 4C.
    auto at_of = [&](int64_t t, int which) {
      return (t / heads_) * l_count * 4 * c + column(t, which);
    };
    auto qkvo_of = [&](int64_t t, int which) { return in[0].f32() + at_of(t, which); };
    auto qkvo_bf16_of = [&](int64_t t, int which) {
      return static_cast<const uint16_t*>(in[0].data) + at_of(t, which);
    };
    // Typed operands: tokens [l0, l1) of task t's q/k/v/o widened into
    // `buffer`, token l at .base + l * d.
    auto widen = [&](int64_t t, int which, int64_t l0, int64_t l1, float* buffer) {
      return widen_rows(convert_, in[0], 4 * c, column(t, which), d_, (t / heads_) * l_count, l0,
                        l1, buffer)
          .base;
    };
    // Runs body(l0, l1, chunk buffer) over [l0, l1): at once in float32,
    // in chunks of kTokensPerChunk for typed operands.
    auto chunked = [&](int64_t l0, int64_t l1, auto&& body) {
      if (!typed) return body(l0, l1, static_cast<float*>(nullptr));
      float* buffer = buffers_.mine(buffer_scratch);
      for (int64_t a = l0; a < l1; a += kTokensPerChunk) {
        body(a, std::min(a + kTokensPerChunk, l1), buffer);
      }
    };

    // Pass 1 on slot s: sums of elu(q) + 1.
    auto q_pass = [&](int64_t s) {
      int64_t l0, l1;
      range(s % parts_, &l0, &l1);
      const int64_t t = s / parts_;
      double* sum = vec_sum + s * d_;
      for (int e = 0; e < d_; ++e) sum[e] = 0.0;
      if (bf16_) return core_.rala_q_sum_bf16(qkvo_bf16_of(t, 0), 4 * c, l0, l1, d_, sum);
      chunked(l0, l1, [&](int64_t a, int64_t b, float* buffer) {
        if (!typed) return core_.rala_q_sum(qkvo_of(t, 0), 4 * c, a, b, d_, sum);
        core_.rala_q_sum(widen(t, 0, a, b, buffer), d_, a, b, d_, sum);
      });
    };
    // Task t's qm, scaled by 1/sqrt(d), from its parts' sums.
    auto finish_q = [&](int64_t t) {
      for (int e = 0; e < d_; ++e) {
        double total = 0.0;
        for (int64_t p = 0; p < parts_; ++p) total += vec_sum[(t * parts_ + p) * d_ + e];
        qm[t * d_ + e] = static_cast<float>(total / static_cast<double>(l_count)) * scale;
      }
    };
    // Pass 2 on slot s: logits, their maximum, weight, key and KV sums.
    auto kv_pass = [&](int64_t s) {
      int64_t l0, l1;
      range(s % parts_, &l0, &l1);
      const int64_t t = s / parts_;
      double* ksum = vec_sum + s * d_;
      double* kvs = kv_sum + s * dd;
      for (int e = 0; e < d_; ++e) ksum[e] = 0.0;
      for (int64_t i = 0; i < dd; ++i) kvs[i] = 0.0;
      weight_sum[s] = 0.0;
      float max_logit = -INFINITY;
      if (bf16_) {
        core_.rala_kv_sum_bf16(qkvo_bf16_of(t, 1), qkvo_bf16_of(t, 2), 4 * c, l0, l1, w_, d_, rope,
                               qm + t * d_, &max_logit, weight_sum + s, ksum, kvs);
        slot_max[s] = max_logit;
        return;
      }
      chunked(l0, l1, [&](int64_t a, int64_t b, float* buffer) {
        if (!typed) {
          return core_.rala_kv_sum(qkvo_of(t, 1), qkvo_of(t, 2), 4 * c, a, b, w_, d_, rope,
                                   qm + t * d_, &max_logit, weight_sum + s, ksum, kvs);
        }
        const float* k = widen(t, 1, a, b, buffer);
        const float* v = widen(t, 2, a, b, buffer + kTokensPerChunk * d_);
        core_.rala_kv_sum(k, v, d_, a, b, w_, d_, rope, qm + t * d_, &max_logit, weight_sum + s,
                          ksum, kvs);
      });
      slot_max[s] = max_logit;
    };
    // Task t's KV and kbar from its parts' sums, each brought to the
    // task's largest logit: KV = (1/L) sum rope(k')^T v with
    // k' = (elu(k)+1) w L / sum w.
    auto finish_kv = [&](int64_t t) {
      const double* m = slot_max + t * parts_;
      double top = m[0];
      for (int64_t p = 1; p < parts_; ++p) top = std::max(top, m[p]);
      double part_scale[kMaxParts];
      double w = 0.0;
      for (int64_t p = 0; p < parts_; ++p) {
        part_scale[p] = m[p] == top ? 1.0 : std::exp(m[p] - top);
        w += weight_sum[t * parts_ + p] * part_scale[p];
      }
      const double inv = 1.0 / w;
      for (int64_t i = 0; i < dd; ++i) {
        double total = 0.0;
        for (int64_t p = 0; p < parts_; ++p)
          total += kv_sum[(t * parts_ + p) * dd + i] * part_scale[p];
        kv[t * dd + i] = static_cast<float>(total * inv);
      }
      for (int e = 0; e < d_; ++e) {
        double total = 0.0;
        for (int64_t p = 0; p < parts_; ++p)
          total += vec_sum[(t * parts_ + p) * d_ + e] * part_scale[p];
        kbar[t * d_ + e] = static_cast<float>(total * inv);
      }
    };
    // Pass 3 on tokens [l0, l1) of task t, each token independently.
    auto output_pass = [&](int64_t t, int64_t l0, int64_t l1) {
      const int64_t b = t / heads_, head = t % heads_;
      if (bf16_) {
        const int64_t at = b * l_count * c + head * d_;
        core_.rala_output_bf16(qkvo_bf16_of(t, 0), qkvo_bf16_of(t, 3), 4 * c,
                               static_cast<const uint16_t*>(in[1].data) + at, c,
                               static_cast<uint16_t*>(output.data) + at, l0, l1, w_, d_, rope,
                               kv + t * dd, kbar + t * d_);
        return;
      }
      if (!typed) {
        core_.rala_output(qkvo_of(t, 0), qkvo_of(t, 3), 4 * c,
                          in[1].f32() + b * l_count * c + head * d_, c,
                          output.f32() + b * l_count * c + head * d_, l0, l1, w_, d_, rope,
                          kv + t * dd, kbar + t * d_);
        return;
      }
      float* buffer = buffers_.mine(buffer_scratch);
      const int64_t piece = kTokensPerChunk * d_;
      for (int64_t a = l0; a < l1; a += kTokensPerChunk) {
        const int64_t e = std::min(a + kTokensPerChunk, l1);
        const float* q = widen(t, 0, a, e, buffer);
        const float* o = widen(t, 3, a, e, buffer + piece);
        const float* lepe =
            widen_rows(convert_, in[1], c, head * d_, d_, b * l_count, a, e, buffer + 2 * piece)
                .base;
        float* out = buffer + 3 * piece;
        core_.rala_output(q, o, d_, lepe, d_, rebase(out, a, d_), a, e, w_, d_, rope, kv + t * dd,
                          kbar + t * d_);
        narrow_rows(convert_, out, output, c, head * d_, d_, b * l_count, a, e);
      }
    };

    if (whole_tasks_) {
#pragma omp parallel for schedule(static) num_threads(threads_)
      for (int64_t t = 0; t < tasks; ++t) {
        q_pass(t);
        finish_q(t);
        kv_pass(t);
        finish_kv(t);
        output_pass(t, 0, l_count);
      }
      return;
    }
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t s = 0; s < slots; ++s) q_pass(s);
    for (int64_t t = 0; t < tasks; ++t) finish_q(t);
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t s = 0; s < slots; ++s) kv_pass(s);
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t t = 0; t < tasks; ++t) finish_kv(t);
    // Pass 3: every thread an equal, contiguous share of all the tasks'
    // tokens, so that its loop asks for the rows ahead without a break.
    const int64_t total = tasks * l_count;
#pragma omp parallel num_threads(threads_)
    {
      const int64_t shares = omp_get_num_threads(), me = omp_get_thread_num();
      const int64_t end = total * (me + 1) / shares;
      for (int64_t at = total * me / shares; at < end;) {
        const int64_t t = at / l_count, l0 = at % l_count;
        const int64_t l1 = std::min(l_count, l0 + (end - at));
        output_pass(t, l0, l1);
        at += l1 - l0;
      }
    }
  }

 private:
  const RalaLoops& core_;  // the instruction set chosen at prepare
  const ConvertLoops& convert_;
  int threads_;
  bool bf16_ = false;         // every operand bfloat16, read by the loops as it is
  ThreadBuffers buffers_;     // none when the operands are of one type
  bool whole_tasks_ = false;  // every thread runs whole tasks (all passes)
  int64_t parts_ = 1;
  size_t doubles_ = 0, floats_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> make_rala_attention(const PrepareArgs& args) {
  return std::make_unique<RalaKernel>(args);
}

}  // namespace ravlt::runtime::cpu
