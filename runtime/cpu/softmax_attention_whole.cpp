// Softmax attention in bfloat16 over whole rows of scores (spec §3.4),
// for the few tokens of the last stages at classification sizes (L = 196
// and 49 at 224 x 224). Per image, every head's rotated queries and keys
// and its values are packed once, then two oneDNN bfloat16 matmuls batched
// over the heads compute all scores S = Q K^T and the update P V, our
// softmax running over whole rows of S between them. The blocks kernel
// (softmax_attention_blocks.cpp) makes one pair of matmul calls per tile
// of 128 queries, head and key block, and pads the last tile to 128 rows:
// at L = 196 those small steps cost more than the arithmetic. On AMD Zen 4
// (RAVLT-T at 224, 4 heads of 64, alternated runs) a stage-3 node took
// 0.22-0.26 ms here against 0.31-0.34 ms there; on an Emerald Rapids Xeon
// (AMX) SoftmaxAttention took 0.90x (T batch 1), 0.93x (S batch 1) and
// 0.91x (T batch 8) the blocks kernel's time (bench/RESULTS.md).
//
// In float32 the same scheme measured no faster than our float32 kernel
// (0.34-0.45 against 0.36-0.37 ms per node): the matmuls ran at the GEMM
// rate, but packing, the softmax and the gated output around them cost as
// much as that kernel's whole time over its GEMM floor.
//
// Keys and values are padded with zero rows to a whole number of registers
// (so are the rows of scores and weights; oneDNN's fast matmuls take dense
// operands only, and our softmax loads whole registers), the padding's
// weights being zero. The queries and keys are rounded after rotation and
// the weights P before the second matmul, as the blocks kernel and
// PyTorch's bfloat16 attention do.
#include "runtime/cpu/softmax_attention_whole.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/cpu/attention_kernel.h"
#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/softmax_attention_blocks.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr float kLog2e = 1.44269504088896341f;

// Rows of one head per task of the loops between the matmuls.
constexpr int64_t kRowsPerTask = 32;

class SoftmaxAttentionWholeKernel : public AttentionKernel {
 public:
  SoftmaxAttentionWholeKernel(const PrepareArgs& a, const dnnl::matmul::primitive_desc& qk,
                              const dnnl::matmul::primitive_desc& pv, int64_t padded)
      : AttentionKernel(a),
        loops_(softmax_loops(active_isa())),
        convert_(convert_loops(active_isa())),
        threads_(a.context.threads),
        padded_(padded),
        qk_(qk),
        pv_(pv),
        stream_(a.context.stream),
        q_(qk.src_desc(), a.context.engine, DNNL_MEMORY_NONE),
        k_(qk.weights_desc(), a.context.engine, DNNL_MEMORY_NONE),
        s_(qk.dst_desc(), a.context.engine, DNNL_MEMORY_NONE),
        p_(pv.src_desc(), a.context.engine, DNNL_MEMORY_NONE),
        v_(pv.weights_desc(), a.context.engine, DNNL_MEMORY_NONE),
        acc_(pv.dst_desc(), a.context.engine, DNNL_MEMORY_NONE),
        qk_scratch_(qk.scratchpad_desc(), a.context.engine, DNNL_MEMORY_NONE),
        pv_scratch_(pv.scratchpad_desc(), a.context.engine, DNNL_MEMORY_NONE),
        qk_args_(a.node.name),
        pv_args_(a.node.name),
        gate_lepe_(a.context.threads, 2 * kRowsPerTask * d_) {
    qk_args_.add(DNNL_ARG_SRC, q_);
    qk_args_.add(DNNL_ARG_WEIGHTS, k_);
    qk_args_.add(DNNL_ARG_DST, s_);
    qk_args_.add(DNNL_ARG_SCRATCHPAD, qk_scratch_);
    pv_args_.add(DNNL_ARG_SRC, p_);
    pv_args_.add(DNNL_ARG_WEIGHTS, v_);
    pv_args_.add(DNNL_ARG_DST, acc_);
    pv_args_.add(DNNL_ARG_SCRATCHPAD, pv_scratch_);
    const int64_t l_count = h_ * w_, rows = int64_t{heads_} * l_count;
    // One image at a time: q, then k and v (padded), the scores, the
    // weights, the output of the second matmul, per row max, sum and
    // correction; then the matmuls' scratchpad and the threads' gate and
    // lepe rows.
    q_bytes_ = cache_lines(static_cast<size_t>(rows * d_) * 2);
    kv_bytes_ = cache_lines(static_cast<size_t>(int64_t{heads_} * padded_ * d_) * 2);
    s_bytes_ = cache_lines(static_cast<size_t>(rows * padded_) * 4);
    p_bytes_ = cache_lines(static_cast<size_t>(rows * padded_) * 2);
    acc_bytes_ = cache_lines(static_cast<size_t>(rows * d_) * 4);
    per_row_bytes_ = cache_lines(static_cast<size_t>(rows) * 4);
    gemm_scratch_bytes_ =
        cache_lines(std::max(qk.scratchpad_desc().get_size(), pv.scratchpad_desc().get_size()));
  }

  size_t scratch_bytes() const override {
    return q_bytes_ + 2 * kv_bytes_ + s_bytes_ + p_bytes_ + acc_bytes_ + 3 * per_row_bytes_ +
           gemm_scratch_bytes_ + gate_lepe_.bytes();
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_;
    uint8_t* at = scratch;
    auto take = [&at](size_t bytes) {
      uint8_t* p = at;
      at += bytes;
      return p;
    };
    auto* q = reinterpret_cast<uint16_t*>(take(q_bytes_));
    auto* k = reinterpret_cast<uint16_t*>(take(kv_bytes_));
    auto* v = reinterpret_cast<uint16_t*>(take(kv_bytes_));
    auto* s = reinterpret_cast<float*>(take(s_bytes_));
    auto* p = reinterpret_cast<uint16_t*>(take(p_bytes_));
    auto* acc = reinterpret_cast<float*>(take(acc_bytes_));
    auto* max = reinterpret_cast<float*>(take(per_row_bytes_));
    auto* sum = reinterpret_cast<float*>(take(per_row_bytes_));
    auto* correction = reinterpret_cast<float*>(take(per_row_bytes_));
    uint8_t* gemm_scratch = take(gemm_scratch_bytes_);
    uint8_t* thread_scratch = at;

    q_.set_data_handle(q);
    k_.set_data_handle(k);
    v_.set_data_handle(v);
    s_.set_data_handle(s);
    p_.set_data_handle(p);
    acc_.set_data_handle(acc);
    qk_scratch_.set_data_handle(gemm_scratch);
    pv_scratch_.set_data_handle(gemm_scratch);
    const int64_t chunks = (l_count + kRowsPerTask - 1) / kRowsPerTask;
    const int64_t tasks = int64_t{heads_} * chunks;
    const float scale = kLog2e / std::sqrt(static_cast<float>(d_));  // base-2 scores
    const RopeView rope = rope_.view();
    for (int64_t b = 0; b < n_; ++b) {
      const size_t image = static_cast<size_t>(b * l_count * 4 * c);
      // Queries (scaled) and keys of every head, rotated, and values, in
      // rows; the last task of a head zeroes its padding keys and values.
#pragma omp parallel for schedule(static) num_threads(threads_)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t head = t / chunks, l0 = (t % chunks) * kRowsPerTask;
        const int64_t l1 = std::min(l0 + kRowsPerTask, l_count);
        const int64_t row = head * l_count + l0, key = head * padded_ + l0;
        const uint16_t* x = static_cast<const uint16_t*>(in[0].data) + image + head * d_;
        loops_.rotate_rows_bf16(x, 4 * c, l0, l1, w_, d_, rope, scale, q + row * d_);
        loops_.rotate_rows_bf16(x + c, 4 * c, l0, l1, w_, d_, rope, 1.0f, k + key * d_);
        const size_t value_bytes = static_cast<size_t>(d_) * 2;
        for (int64_t l = l0; l < l1; ++l) {
          std::memcpy(v + (key + l - l0) * d_, x + 2 * c + l * 4 * c, value_bytes);
        }
        if (l1 == l_count) {
          const int64_t first_pad = (head * padded_ + l_count) * d_;
          const size_t pad = static_cast<size_t>(padded_ - l_count) * value_bytes;
          std::memset(k + first_pad, 0, pad);
          std::memset(v + first_pad, 0, pad);
        }
      }
      qk_args_.execute(qk_, stream_);
      // Whole rows: the softmax's weights (2^(s - max)) and sums.
#pragma omp parallel for schedule(static) num_threads(threads_)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t head = t / chunks, l0 = (t % chunks) * kRowsPerTask;
        const int64_t rows = std::min(kRowsPerTask, l_count - l0);
        const int64_t row = head * l_count + l0;
        for (int64_t r = row; r < row + rows; ++r) {
          max[r] = -std::numeric_limits<float>::infinity();
          sum[r] = 0.0f;
        }
        loops_.softmax_block_bf16(s + row * padded_, padded_, rows, l_count, padded_, max + row,
                                  sum + row, correction + row, p + row * padded_);
      }
      pv_args_.execute(pv_, stream_);
      // out = (acc / sum + lepe) * o, in the output's type.
#pragma omp parallel for schedule(static) num_threads(threads_)
      for (int64_t t = 0; t < tasks; ++t) {
        const int64_t head = t / chunks, l0 = (t % chunks) * kRowsPerTask;
        const int64_t l1 = std::min(l0 + kRowsPerTask, l_count);
        float* gate = gate_lepe_.mine(thread_scratch);
        float* lepe = gate + kRowsPerTask * d_;
        widen_rows(convert_, in[0], 4 * c, 3 * c + head * d_, d_, b * l_count, l0, l1, gate);
        widen_rows(convert_, in[1], c, head * d_, d_, b * l_count, l0, l1, lepe);
        float* rows = acc + (head * l_count + l0) * d_;
        gate_rows(rows, sum + head * l_count + l0, lepe, gate, l1 - l0);
        narrow_rows(convert_, rows, output, c, head * d_, d_, b * l_count, l0, l1);
      }
    }
  }

 private:
  const SoftmaxLoops& loops_;  // the instruction set chosen at prepare
  const ConvertLoops& convert_;
  int threads_;
  int64_t padded_;  // columns of a row of scores: L rounded up to whole registers
  dnnl::matmul qk_, pv_;
  dnnl::stream& stream_;
  dnnl::memory q_, k_, s_, p_, v_, acc_, qk_scratch_, pv_scratch_;
  PrimitiveArgs qk_args_, pv_args_;
  ThreadBuffers gate_lepe_;  // per thread: a task's gates, then its lepe rows
  size_t q_bytes_ = 0, kv_bytes_ = 0, s_bytes_ = 0, p_bytes_ = 0, acc_bytes_ = 0,
         per_row_bytes_ = 0;
  size_t gemm_scratch_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Kernel> make_softmax_attention_whole(const PrepareArgs& a) {
  const int64_t l_count = a.output_shape()[1] * a.output_shape()[2];
  // The loops between the matmuls are AVX-512 ones: with a narrower
  // instruction set forced (tests), the other kernels take the node.
  if (l_count > kWholeRowsMaxTokens || active_isa() != Isa::kAvx512) return nullptr;
  if (input_dtype(a, 0) != DType::kBFloat16) return nullptr;
  const dt compute = dt::bf16;
  const int64_t heads = a.node.heads, d = a.node.head_dim;
  const int64_t padded = (l_count + 15) / 16 * 16;
  // Per image, batched over heads: Q (heads, L, d) x K^T (heads, d, L'),
  // K stored as rows of keys, L' = L padded; then P (heads, L, L') x V
  // (heads, L', d). All dense: oneDNN 2.6 runs a strided operand on its
  // slower gemm:jit path.
  const dnnl::memory::desc q({heads, l_count, d}, compute, tag::abc);
  const dnnl::memory::desc k({heads, d, padded}, compute, tag::acb);
  const dnnl::memory::desc s({heads, l_count, padded}, dt::f32, tag::abc);
  const dnnl::memory::desc p({heads, l_count, padded}, compute, tag::abc);
  const dnnl::memory::desc v({heads, padded, d}, compute, tag::abc);
  const dnnl::memory::desc acc({heads, l_count, d}, dt::f32, tag::abc);
  const dnnl::engine& engine = a.context.engine;
  const dnnl::matmul::primitive_desc qk(dnnl::matmul::desc(q, k, s), base_attr(), engine);
  const dnnl::matmul::primitive_desc pv(dnnl::matmul::desc(p, v, acc), base_attr(), engine);
  // Only where its bfloat16 units outrun float32, as for the blocks kernel.
  if (!matmul_on_fast_bf16_units(qk) || !matmul_on_fast_bf16_units(pv)) return nullptr;
  return std::make_unique<SoftmaxAttentionWholeKernel>(a, qk, pv, padded);
}

}  // namespace ravlt::runtime::cpu
