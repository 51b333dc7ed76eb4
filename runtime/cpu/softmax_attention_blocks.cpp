// Softmax attention in bfloat16 on bfloat16 units (spec §3.4): the scores
// S = Q K^T and the update O += P V of each tile of queries against each
// block of keys run as oneDNN bfloat16 matmuls (float32 accumulation) on
// AMX tiles or on AMD's AVX512_BF16, and our online softmax runs between
// them on the float32 scores, rounding its weights P to bfloat16 for the
// second GEMM as PyTorch's bfloat16 attention does. The float32 kernel
// (softmax_attention.cpp), which every other CPU and precision runs,
// computes in float32 registers throughout.
//
// Per (image, head), the keys are rotated and, with the values, packed once
// per run into the layouts the two matmuls chose (one reorder per key
// block); then every tile of queries streams over the key blocks. Nothing
// is L x L: a tile's scores are (tile x block) floats of its thread.
// Inner loops (rotation, the online softmax): softmax_attention_loops.inc.
#include "runtime/cpu/softmax_attention_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/cpu/attention_kernel.h"
#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/parallel_errors.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr float kLog2e = 1.44269504088896341f;

int64_t round_up(int64_t x, int64_t to) {
  return (x + to - 1) / to * to;
}

// Bytes rounded up to whole cache lines (every piece of scratch starts on one).
// How the tokens are cut: query tiles of `tile` rows, key blocks of
// `block` keys (a multiple of 64, the last padded with zero keys).
struct Blocking {
  explicit Blocking(int64_t l_count)
      : tile(std::min<int64_t>(128, round_up(l_count, 16))),
        tiles((l_count + tile - 1) / tile),
        blocks((l_count + 255) / 256),
        block(round_up((l_count + blocks - 1) / blocks, 64)) {}
  int64_t tile, tiles, blocks, block;
};

// The oneDNN primitives of one node: the two matmuls of a (tile, block)
// step and the reorders that pack a block of keys and of values for them.
struct Primitives {
  dnnl::matmul::primitive_desc qk, pv;
  dnnl::reorder::primitive_desc k_pack, v_pack;
  dnnl::memory::desc k_plain, v_plain;  // a block's keys and values in rows
};

// One thread's oneDNN objects: memory handles re-pointed per call, and the
// argument lists that name them.
struct ThreadGear {
  ThreadGear(const dnnl::engine& engine, const Primitives& pr, const std::string& node)
      : stream(engine),
        q(pr.qk.src_desc(), engine, DNNL_MEMORY_NONE),
        k_packed(pr.qk.weights_desc(), engine, DNNL_MEMORY_NONE),
        s(pr.qk.dst_desc(), engine, DNNL_MEMORY_NONE),
        p(pr.pv.src_desc(), engine, DNNL_MEMORY_NONE),
        v_packed(pr.pv.weights_desc(), engine, DNNL_MEMORY_NONE),
        acc(pr.pv.dst_desc(), engine, DNNL_MEMORY_NONE),
        k_plain(pr.k_plain, engine, DNNL_MEMORY_NONE),
        v_plain(pr.v_plain, engine, DNNL_MEMORY_NONE),
        qk_scratch(pr.qk.scratchpad_desc(), engine, DNNL_MEMORY_NONE),
        pv_scratch(pr.pv.scratchpad_desc(), engine, DNNL_MEMORY_NONE),
        qk_args(node),
        pv_args(node),
        k_pack_args(node),
        v_pack_args(node) {
    qk_args.add(DNNL_ARG_SRC, q);
    qk_args.add(DNNL_ARG_WEIGHTS, k_packed);
    qk_args.add(DNNL_ARG_DST, s);
    qk_args.add(DNNL_ARG_SCRATCHPAD, qk_scratch);
    pv_args.add(DNNL_ARG_SRC, p);
    pv_args.add(DNNL_ARG_WEIGHTS, v_packed);
    pv_args.add(DNNL_ARG_DST, acc);
    pv_args.add(DNNL_ARG_SCRATCHPAD, pv_scratch);
    k_pack_args.add(DNNL_ARG_FROM, k_plain);
    k_pack_args.add(DNNL_ARG_TO, k_packed);
    v_pack_args.add(DNNL_ARG_FROM, v_plain);
    v_pack_args.add(DNNL_ARG_TO, v_packed);
  }
  dnnl::stream stream;  // one per thread: a stream is not for concurrent use
  dnnl::memory q, k_packed, s, p, v_packed, acc, k_plain, v_plain;
  dnnl::memory qk_scratch, pv_scratch;  // the same bytes: the two run in turn
  PrimitiveArgs qk_args, pv_args, k_pack_args, v_pack_args;
};

class SoftmaxAttentionBlocksKernel : public AttentionKernel {
 public:
  SoftmaxAttentionBlocksKernel(const PrepareArgs& a, const Primitives& pr)
      : AttentionKernel(a),
        loops_(softmax_loops(active_isa())),
        convert_(convert_loops(active_isa())),
        threads_(a.context.threads),
        geometry_(h_ * w_),
        qk_(pr.qk),
        pv_(pr.pv),
        k_pack_(pr.k_pack),
        v_pack_(pr.v_pack),
        k_block_bytes_(cache_lines(pr.qk.weights_desc().get_size())),
        v_block_bytes_(cache_lines(pr.pv.weights_desc().get_size())),
        gemm_scratch_bytes_(cache_lines(
            std::max(pr.qk.scratchpad_desc().get_size(), pr.pv.scratchpad_desc().get_size()))) {
    gear_.reserve(static_cast<size_t>(threads_));
    for (int t = 0; t < threads_; ++t) {
      gear_.emplace_back(a.context.engine, pr, a.node.name);
    }
    // Per thread, phase 1 (packing): the rotated keys and the values of one
    // head in plain rows; phase 2 (tiles): Q, S, P, the output so far, the
    // gate and lepe widened, and per row max, sum and correction.
    const int64_t tile = geometry_.tile, nb = geometry_.block, padded = geometry_.blocks * nb;
    const size_t pack = 2 * cache_lines(static_cast<size_t>(padded * d_) * 2);
    const size_t tiles = cache_lines(static_cast<size_t>(tile * d_) * 2) +      // q
                         cache_lines(static_cast<size_t>(tile * nb) * 4) +      // s
                         cache_lines(static_cast<size_t>(tile * nb) * 2) +      // p
                         3 * cache_lines(static_cast<size_t>(tile * d_) * 4) +  // acc, o, lepe
                         3 * cache_lines(static_cast<size_t>(tile) * 4);  // max, sum, correction
    per_thread_bytes_ = std::max(pack, tiles) + gemm_scratch_bytes_;
  }

  size_t scratch_bytes() const override {
    return packed_bytes() + static_cast<size_t>(threads_) * per_thread_bytes_;
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    const int64_t tasks = n_ * heads_;
    ParallelErrors errors;  // (oneDNN's failures, thrown inside the regions)
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t t = 0; t < tasks; ++t) {
      errors.run([&] { pack_head(in[0], scratch, t); });
    }
    errors.rethrow();
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads_)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t q_tile = 0; q_tile < geometry_.tiles; ++q_tile) {
        errors.run([&] { attend_tile(in, output, scratch, t, q_tile); });
      }
    }
    errors.rethrow();
  }

 private:
  // Task t's (image, head) keys rotated and values copied, both packed, a
  // block at a time, into the layouts of the two matmuls.
  void pack_head(ConstView qkvo, uint8_t* scratch, int64_t t) {
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_;
    const int64_t nb = geometry_.block, padded = geometry_.blocks * nb;
    const int me = omp_get_thread_num();
    ThreadGear& g = gear_[static_cast<size_t>(me)];
    uint8_t* mine = thread_scratch(scratch, me);
    auto* k_rows = reinterpret_cast<uint16_t*>(mine);
    auto* v_rows =
        reinterpret_cast<uint16_t*>(mine + cache_lines(static_cast<size_t>(padded * d_) * 2));
    const int64_t b = t / heads_, head = t % heads_;
    const uint16_t* k =
        static_cast<const uint16_t*>(qkvo.data) + b * l_count * 4 * c + c + head * d_;
    loops_.rotate_rows_bf16(k, 4 * c, 0, l_count, w_, d_, rope_.view(), 1.0f, k_rows);
    for (int64_t l = 0; l < l_count; ++l) {
      std::memcpy(v_rows + l * d_, k + c + l * 4 * c, static_cast<size_t>(d_) * 2);
    }
    const size_t pad = static_cast<size_t>((padded - l_count) * d_) * 2;
    std::memset(k_rows + l_count * d_, 0, pad);  // zero keys: masked as scores
    std::memset(v_rows + l_count * d_, 0, pad);  // and zero weight times zero
    for (int64_t blk = 0; blk < geometry_.blocks; ++blk) {
      g.k_plain.set_data_handle(k_rows + blk * nb * d_);
      g.k_packed.set_data_handle(packed_k(scratch, t, blk));
      g.k_pack_args.execute(k_pack_, g.stream);
      g.v_plain.set_data_handle(v_rows + blk * nb * d_);
      g.v_packed.set_data_handle(packed_v(scratch, t, blk));
      g.v_pack_args.execute(v_pack_, g.stream);
    }
  }

  // Task t's queries of tile q_tile against every key block (packed by
  // pack_head), through the online softmax, into the output.
  void attend_tile(const ConstView* in, View output, uint8_t* scratch, int64_t t, int64_t q_tile) {
    const int64_t l_count = h_ * w_, c = int64_t{heads_} * d_;
    const int64_t tile = geometry_.tile, nb = geometry_.block;
    const int me = omp_get_thread_num();
    ThreadGear& g = gear_[static_cast<size_t>(me)];
    uint8_t* at = thread_scratch(scratch, me);
    auto take = [&at](size_t bytes) {
      uint8_t* p = at;
      at += cache_lines(bytes);
      return p;
    };
    auto* q = reinterpret_cast<uint16_t*>(take(static_cast<size_t>(tile * d_) * 2));
    auto* s = reinterpret_cast<float*>(take(static_cast<size_t>(tile * nb) * 4));
    auto* p = reinterpret_cast<uint16_t*>(take(static_cast<size_t>(tile * nb) * 2));
    auto* acc = reinterpret_cast<float*>(take(static_cast<size_t>(tile * d_) * 4));
    auto* o = reinterpret_cast<float*>(take(static_cast<size_t>(tile * d_) * 4));
    auto* lepe = reinterpret_cast<float*>(take(static_cast<size_t>(tile * d_) * 4));
    auto* max = reinterpret_cast<float*>(take(static_cast<size_t>(tile) * 4));
    auto* sum = reinterpret_cast<float*>(take(static_cast<size_t>(tile) * 4));
    auto* correction = reinterpret_cast<float*>(take(static_cast<size_t>(tile) * 4));
    uint8_t* gemm_scratch = thread_scratch(scratch, me) + per_thread_bytes_ - gemm_scratch_bytes_;

    const int64_t b = t / heads_, head = t % heads_;
    const int64_t l0 = q_tile * tile, l1 = std::min(l0 + tile, l_count), rows = l1 - l0;
    const uint16_t* image = static_cast<const uint16_t*>(in[0].data) + b * l_count * 4 * c;
    const float scale = kLog2e / std::sqrt(static_cast<float>(d_));  // base-2 scores
    loops_.rotate_rows_bf16(image + head * d_, 4 * c, l0, l1, w_, d_, rope_.view(), scale, q);
    if (rows < tile) {  // the last tile: zero queries (and weights) below its rows
      std::memset(q + rows * d_, 0, static_cast<size_t>((tile - rows) * d_) * 2);
      std::memset(p + rows * nb, 0, static_cast<size_t>((tile - rows) * nb) * 2);
    }
    for (int64_t r = 0; r < rows; ++r) {
      max[r] = -std::numeric_limits<float>::infinity();
      sum[r] = 0.0f;
    }
    std::memset(acc, 0, static_cast<size_t>(tile * d_) * 4);
    g.q.set_data_handle(q);
    g.s.set_data_handle(s);
    g.p.set_data_handle(p);
    g.acc.set_data_handle(acc);
    g.qk_scratch.set_data_handle(gemm_scratch);
    g.pv_scratch.set_data_handle(gemm_scratch);
    for (int64_t blk = 0; blk < geometry_.blocks; ++blk) {
      g.k_packed.set_data_handle(packed_k(scratch, t, blk));
      g.qk_args.execute(qk_, g.stream);
      const int64_t count = std::min(nb, l_count - blk * nb);
      loops_.softmax_block_bf16(s, nb, rows, count, nb, max, sum, correction, p);
      for (int64_t r = 0; r < rows; ++r) {
        if (correction[r] == 1.0f) continue;
        float* row = acc + r * d_;
        for (int e = 0; e < d_; ++e) row[e] *= correction[r];
      }
      g.v_packed.set_data_handle(packed_v(scratch, t, blk));
      g.pv_args.execute(pv_, g.stream);  // acc += P V (a sum post-op)
    }
    // out = (acc / sum + lepe) * o, in the output's type.
    widen_rows(convert_, in[0], 4 * c, 3 * c + head * d_, d_, b * l_count, l0, l1, o);
    widen_rows(convert_, in[1], c, head * d_, d_, b * l_count, l0, l1, lepe);
    gate_rows(acc, sum, lepe, o, rows);
    narrow_rows(convert_, acc, output, c, head * d_, d_, b * l_count, l0, l1);
  }

  // Thread `me`'s part of the scratch (after every head's packed blocks).
  uint8_t* thread_scratch(uint8_t* scratch, int me) const {
    return scratch + packed_bytes() + static_cast<size_t>(me) * per_thread_bytes_;
  }

  size_t packed_bytes() const {
    return static_cast<size_t>(n_ * heads_ * geometry_.blocks) * (k_block_bytes_ + v_block_bytes_);
  }
  uint8_t* packed_k(uint8_t* scratch, int64_t task, int64_t blk) const {
    return scratch +
           static_cast<size_t>(task * geometry_.blocks + blk) * (k_block_bytes_ + v_block_bytes_);
  }
  uint8_t* packed_v(uint8_t* scratch, int64_t task, int64_t blk) const {
    return packed_k(scratch, task, blk) + k_block_bytes_;
  }

  const SoftmaxLoops& loops_;  // the instruction set chosen at prepare
  const ConvertLoops& convert_;
  int threads_;
  Blocking geometry_;
  dnnl::matmul qk_, pv_;
  dnnl::reorder k_pack_, v_pack_;
  std::vector<ThreadGear> gear_;
  size_t k_block_bytes_ = 0, v_block_bytes_ = 0, gemm_scratch_bytes_ = 0, per_thread_bytes_ = 0;
};

}  // namespace

bool matmul_on_fast_bf16_units(const dnnl::matmul::primitive_desc& pd) {
  const std::string impl = pd.impl_info_str();
  if (impl.find("amx") != std::string::npos) return true;
  return impl.find("avx512_core_bf16") != std::string::npos && bf16_dot_outruns_fma();
}

std::unique_ptr<Kernel> make_softmax_attention_blocks(const PrepareArgs& a) {
  if (input_dtype(a, 0) != DType::kBFloat16) return nullptr;
  const dnnl::engine& engine = a.context.engine;
  const int64_t d = a.node.head_dim;
  const Blocking geometry(a.output_shape()[1] * a.output_shape()[2]);
  const int64_t tile = geometry.tile, nb = geometry.block;
  const dnnl::memory::desc q({tile, d}, dt::bf16, tag::ab);
  const dnnl::memory::desc k({d, nb}, dt::bf16, tag::any);
  const dnnl::memory::desc s({tile, nb}, dt::f32, tag::ab);
  const dnnl::memory::desc p({tile, nb}, dt::bf16, tag::ab);
  const dnnl::memory::desc v({nb, d}, dt::bf16, tag::any);
  const dnnl::memory::desc out({tile, d}, dt::f32, tag::ab);
  dnnl::primitive_attr pv_attr = base_attr();
  dnnl::post_ops accumulate;
  accumulate.append_sum(1.0f);
  pv_attr.set_post_ops(accumulate);
  Primitives pr;
  pr.qk = dnnl::matmul::primitive_desc(dnnl::matmul::desc(q, k, s), base_attr(), engine);
  pr.pv = dnnl::matmul::primitive_desc(dnnl::matmul::desc(p, v, out), pv_attr, engine);
  // Only where oneDNN's bfloat16 matmuls outrun our float32 kernel: on AMX
  // tiles, and on AVX512_BF16 whose vdpbf16ps does more multiply-adds per
  // cycle than the float32 FMA (bf16_dot_outruns_fma(): AMD Zen 4 and
  // later). With Intel's AVX512_BF16 alone (AMX masked on a Sapphire
  // Rapids) the matmuls at these shapes (K = d = 64 for the scores, many
  // small calls) measured 1.5-2x slower than our float32 kernel on the
  // same operands; elsewhere there are no bfloat16 units at all. The
  // loops around the matmuls are AVX-512: with a narrower instruction set
  // forced (tests), the float32 kernel takes the node.
  if (active_isa() != Isa::kAvx512 || !matmul_on_fast_bf16_units(pr.qk) ||
      !matmul_on_fast_bf16_units(pr.pv)) {
    return nullptr;
  }
  pr.k_plain = dnnl::memory::desc({d, nb}, dt::bf16, tag::ba);  // one key per row
  pr.v_plain = dnnl::memory::desc({nb, d}, dt::bf16, tag::ab);
  pr.k_pack =
      dnnl::reorder::primitive_desc(engine, pr.k_plain, engine, pr.qk.weights_desc(), base_attr());
  pr.v_pack =
      dnnl::reorder::primitive_desc(engine, pr.v_plain, engine, pr.pv.weights_desc(), base_attr());
  // (A 16-bit copy needs none; were one ever to, the float32 kernel runs.)
  if (pr.k_pack.scratchpad_desc().get_size() > 0 || pr.v_pack.scratchpad_desc().get_size() > 0) {
    return nullptr;
  }
  return std::make_unique<SoftmaxAttentionBlocksKernel>(a, pr);
}

}  // namespace ravlt::runtime::cpu
