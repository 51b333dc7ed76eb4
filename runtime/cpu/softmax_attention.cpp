// Softmax attention with RoPE (spec §3.4) and the output gate:
// out = (softmax(rope(q) rope(k)^T / sqrt(d)) v + lepe) * o.
//
// Per (image, head), keys are rotated once per run into scratch, in blocks
// of keys, and values copied beside them into contiguous rows; tiles of
// queries then stream over the key blocks with an online softmax, so no
// L x L matrix is ever stored. Inner loops: softmax_attention_loops.inc.
// Where the (image, head) tasks share out evenly (whole_tasks_per_thread),
// each thread prepares a task's keys and values into a buffer of its own
// and runs all that task's queries at once, while they are still in its
// caches: prepared for every task first, a batch's keys and values
// (RAVLT-T's stage 3 at batch 8: 32 tasks, 3.2 MB) had left the
// second-level cache before the queries came. Otherwise every task is
// prepared first, and the queries of all tasks are shared out in equal runs
// so that every thread has the same work (one image of five heads).
// With bfloat16 operands the keys and values are widened as they are
// rotated and copied, and each tile's queries, gates and lepe are widened
// into float32 buffers of its thread (typed_rows.h).
#include <omp.h>

#include <algorithm>

#include "runtime/cpu/attention_kernel.h"
#include "runtime/cpu/softmax_attention_blocks.h"
#include "runtime/cpu/softmax_attention_whole.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

class SoftmaxAttentionKernel : public AttentionKernel {
 public:
  explicit SoftmaxAttentionKernel(const PrepareArgs& a)
      : AttentionKernel(a),
        core_(softmax_loops(active_isa())),
        convert_(convert_loops(active_isa())),
        threads_(a.context.threads) {
    whole_tasks_ = whole_tasks_per_thread(n_ * heads_, a.context.threads);
    // Typed operands: per thread q, o, lepe and the output of one tile.
    if (!all_float32({input_dtype(a, 0), input_dtype(a, 1), output_dtype(a)})) {
      buffers_ = ThreadBuffers(a.context.threads, 4 * kQueryTile * d_);
    }
  }

  size_t scratch_bytes() const override {
    return static_cast<size_t>(kv_buffers() * 2 * per_head()) * sizeof(float) + buffers_.bytes();
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_, tasks = n_ * heads_;
    auto* kv = reinterpret_cast<float*>(scratch);  // per buffer: keys, then values
    uint8_t* buffer_scratch =
        scratch + static_cast<size_t>(kv_buffers() * 2 * per_head()) * sizeof(float);
    const bool typed = buffers_.threads() > 0;
    const RopeView rope = rope_.view();

    // Task t's rotated keys and its values into `kt` (values per_head() after).
    auto prepare = [&](int64_t t, float* kt) {
      const int64_t b = t / heads_, head = t % heads_;
      const int64_t k_at = b * l_count * 4 * c + c + head * d_;
      if (in[0].dtype == DType::kBFloat16) {
        const uint16_t* k = static_cast<const uint16_t*>(in[0].data) + k_at;
        core_.prepare_keys_values_bf16(k, k + c, 4 * c, l_count, w_, d_, rope, kt, kt + per_head());
      } else {
        const float* k = in[0].f32() + k_at;
        core_.prepare_keys_values(k, k + c, 4 * c, l_count, w_, d_, rope, kt, kt + per_head());
      }
    };
    // Queries [l0, l1) of task t against its keys and values in `kt`.
    auto attend = [&](int64_t t, int64_t l0, int64_t l1, const float* kt) {
      const int64_t b = t / heads_, head = t % heads_;
      if (!typed) {
        const float* q = in[0].f32() + b * l_count * 4 * c + head * d_;
        core_.softmax_rows(q, q + 3 * c, 4 * c, in[1].f32() + b * l_count * c + head * d_, c,
                           output.f32() + b * l_count * c + head * d_, l0, l1, l_count, w_, d_,
                           rope, kt, kt + per_head());
        return;
      }
      float* buffer = buffers_.mine(buffer_scratch);
      const int64_t piece = kQueryTile * d_, first = b * l_count;
      for (int64_t a = l0; a < l1; a += kQueryTile) {
        const int64_t e = std::min(a + kQueryTile, l1);
        const float* q =
            widen_rows(convert_, in[0], 4 * c, head * d_, d_, first, a, e, buffer).base;
        const float* o =
            widen_rows(convert_, in[0], 4 * c, 3 * c + head * d_, d_, first, a, e, buffer + piece)
                .base;
        const float* lepe =
            widen_rows(convert_, in[1], c, head * d_, d_, first, a, e, buffer + 2 * piece).base;
        float* out = buffer + 3 * piece;
        core_.softmax_rows(q, o, d_, lepe, d_, rebase(out, a, d_), a, e, l_count, w_, d_, rope, kt,
                           kt + per_head());
        narrow_rows(convert_, out, output, c, head * d_, d_, first, a, e);
      }
    };

    if (whole_tasks_) {
#pragma omp parallel for schedule(static) num_threads(threads_)
      for (int64_t t = 0; t < tasks; ++t) {
        float* kt = kv + omp_get_thread_num() * 2 * per_head();
        prepare(t, kt);
        attend(t, 0, l_count, kt);
      }
      return;
    }
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t t = 0; t < tasks; ++t) prepare(t, kv + t * 2 * per_head());
    // Every task's queries in a row, cut into one equal run per thread, a
    // run crossing from task to task: RAVLT-S's five heads at 224 x 224 in
    // chunks of 64 queries (64, 64, 64 and 4 a head) had left one thread
    // 520 queries and the other 460.
    const int64_t total = tasks * l_count;
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t part = 0; part < threads_; ++part) {
      const int64_t end = total * (part + 1) / threads_;
      for (int64_t i = total * part / threads_; i < end;) {
        const int64_t t = i / l_count, l0 = i % l_count;
        const int64_t l1 = std::min(l_count, l0 + (end - i));
        attend(t, l0, l1, kv + t * 2 * per_head());
        i += l1 - l0;
      }
    }
  }

 private:
  int64_t per_head() const {
    return softmax_buffer_floats(h_ * w_, d_);
  }
  // Key and value buffers in the scratch: one per thread (whole tasks) or per task.
  int64_t kv_buffers() const {
    return whole_tasks_ ? threads_ : n_ * heads_;
  }

  const SoftmaxLoops& core_;  // the instruction set chosen at prepare
  const ConvertLoops& convert_;
  int threads_;
  ThreadBuffers buffers_;     // none when every operand is float32
  bool whole_tasks_ = false;  // every thread prepares and runs whole tasks
};

}  // namespace

std::unique_ptr<Kernel> make_softmax_attention(const PrepareArgs& args) {
  // Few tokens: whole rows of scores; else the online softmax over key
  // blocks, on oneDNN's bfloat16 matmuls where they are fast, else ours.
  if (auto whole = make_softmax_attention_whole(args)) return whole;
  if (auto on_gemms = make_softmax_attention_blocks(args)) return on_gemms;
  return std::make_unique<SoftmaxAttentionKernel>(args);
}

}  // namespace ravlt::runtime::cpu
