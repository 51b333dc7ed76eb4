// The vectorized inner loops of our CPU kernels (attention, LayerNorm), one
// implementation per op and instruction set (see isa.h). The attention functions
// operate on one (batch item, head) task.
//
// Layout: channels-last rows; q, k, v, o of a head are d contiguous floats
// at a fixed offset in each token's row of `row_stride` floats.
#pragma once

#include <cstdint>

#include "runtime/cpu/isa.h"

namespace ravlt::runtime::cpu {

/// RoPE tables of a plan: sin and cos per image row (height x d/2) and per
/// column (width x d/2), the sine negated at even indices; see rope_tables.h.
struct RopeView {
  const float* sin_y;
  const float* cos_y;
  const float* sin_x;
  const float* cos_x;
  int half;  // d / 2
};

/// RALA's inner loops (rala_attention_loops.inc), on one (image, head) task.
struct RalaLoops {
  /// RALA pass 1: adds sum over tokens [l0, l1) of elu(q) + 1 to `sum` (d).
  void (*rala_q_sum)(const float* q, int64_t row_stride, int64_t l0, int64_t l1, int d,
                     double* sum);
  /// RALA passes 2 and 3 in one, for [l0, l1): logits
  /// g_l = <qm_scaled, elu(k_l) + 1>, and with w_l = exp(g_l - max_logit) and
  /// k'_l = (elu(k_l) + 1) w_l, adds sum w_l to `weight_sum`, sum k'_l to
  /// `kbar_sum` (d) and sum rope(k'_l)^T v_l to `kv_sum` (d x d). `max_logit` is
  /// the running maximum of the logits (-inf before the first token):
  /// where a chunk of tokens raises it, the three sums are rescaled to the
  /// new one first.
  void (*rala_kv_sum)(const float* k, const float* v, int64_t row_stride, int64_t l0, int64_t l1,
                      int64_t width, int d, const RopeView& rope, const float* qm_scaled,
                      float* max_logit, double* weight_sum, double* kbar_sum, double* kv_sum);
  /// RALA pass 3 (the last) for tokens [l0, l1): out = (rope(q') kv z + lepe) * o,
  /// z = 1 / (<q', kbar> + 1e-6).
  void (*rala_output)(const float* q, const float* o, int64_t row_stride, const float* lepe,
                      int64_t lepe_stride, float* out, int64_t l0, int64_t l1, int64_t width, int d,
                      const RopeView& rope, const float* kv, const float* kbar);
  /// The same three on bfloat16 activations (q, k, v, o, lepe and out as
  /// raw 16-bit elements, widened as they are read; the sums, qm_scaled, kv
  /// and kbar as above; each output rounded once).
  void (*rala_q_sum_bf16)(const uint16_t* q, int64_t row_stride, int64_t l0, int64_t l1, int d,
                          double* sum);
  void (*rala_kv_sum_bf16)(const uint16_t* k, const uint16_t* v, int64_t row_stride, int64_t l0,
                           int64_t l1, int64_t width, int d, const RopeView& rope,
                           const float* qm_scaled, float* max_logit, double* weight_sum,
                           double* kbar_sum, double* kv_sum);
  void (*rala_output_bf16)(const uint16_t* q, const uint16_t* o, int64_t row_stride,
                           const uint16_t* lepe, int64_t lepe_stride, uint16_t* out, int64_t l0,
                           int64_t l1, int64_t width, int d, const RopeView& rope, const float* kv,
                           const float* kbar);
};

/// Softmax attention's inner loops (softmax_attention_loops.inc).
struct SoftmaxLoops {
  /// Rotates every key into kt, in blocks of kKeyBlock keys, each block d
  /// rows of kKeyBlock floats, and copies the values into vt, one row of d
  /// floats per key; both padded with zeros to whole blocks
  /// (softmax_buffer_floats).
  void (*prepare_keys_values)(const float* k, const float* v, int64_t row_stride, int64_t l_count,
                              int64_t width, int d, const RopeView& rope, float* kt, float* vt);
  /// Softmax attention for queries [l0, l1) against all L keys (kt, vt from
  /// prepare_keys_values), online softmax over blocks of keys, queries in
  /// tiles that share each block.
  void (*softmax_rows)(const float* q, const float* o, int64_t row_stride, const float* lepe,
                       int64_t lepe_stride, float* out, int64_t l0, int64_t l1, int64_t l_count,
                       int64_t width, int d, const RopeView& rope, const float* kt,
                       const float* vt);
  /// prepare_keys_values for bfloat16 keys and values (raw 16-bit
  /// elements); kt and vt are float32 all the same.
  void (*prepare_keys_values_bf16)(const uint16_t* k, const uint16_t* v, int64_t row_stride,
                                   int64_t l_count, int64_t width, int d, const RopeView& rope,
                                   float* kt, float* vt);
  /// The bfloat16 path on GEMMs (softmax_attention_blocks.cpp): rows [l0,
  /// l1) of x (bfloat16) rotated at their positions, times `scale`,
  /// rounded to bfloat16 into dst (row l - l0 at dst + (l - l0) * d).
  void (*rotate_rows_bf16)(const uint16_t* x, int64_t row_stride, int64_t l0, int64_t l1,
                           int64_t width, int d, const RopeView& rope, float scale, uint16_t* dst);
  /// Its online softmax over one key block of `rows` rows of base-2
  /// scores (`padded` columns, a multiple of 16, the first `count` valid):
  /// updates each row's running max and sum, gives the factor its output
  /// so far must be scaled by, and writes the block's weights to p
  /// (bfloat16, zero past count).
  void (*softmax_block_bf16)(const float* s, int64_t stride, int64_t rows, int64_t count,
                             int64_t padded, float* max, float* sum, float* correction,
                             uint16_t* p);
};

/// LayerNorm's inner loop (layer_norm_loops.inc).
struct LayerNormLoops {
  /// LayerNorm of rows [r0, r1) of x (rows of c floats): mean and variance
  /// over each row, then * gamma + beta.
  void (*layer_norm)(const float* x, const float* gamma, const float* beta, float* out, int64_t r0,
                     int64_t r1, int64_t c, float epsilon);
  /// The same from float32 rows into bfloat16 ones (the residual stream
  /// into a GEMM's source in a bfloat16 plan), rounded as they are stored.
  void (*layer_norm_bf16_out)(const float* x, const float* gamma, const float* beta, uint16_t* out,
                              int64_t r0, int64_t r1, int64_t c, float epsilon);
};

/// Element type conversions of whole rows (bfloat16 as raw 16 bits; round
/// to nearest even when narrowing, as PyTorch's casts).
struct ConvertLoops {
  void (*bf16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_bf16)(const float* src, uint16_t* dst, int64_t n);
  /// `rows` rows of `cols` elements, `stride` elements apart at src, into
  /// contiguous rows at dst (one call per piece of work, not per row: the
  /// rows are short, a head's d elements).
  void (*bf16_rows_to_f32)(const uint16_t* src, int64_t stride, int64_t rows, int64_t cols,
                           float* dst);
  /// The reverse: contiguous rows at src into rows `stride` elements apart.
  void (*f32_rows_to_bf16)(const float* src, int64_t rows, int64_t cols, uint16_t* dst,
                           int64_t stride);
};

/// Activations over a GEMM's or convolution's output, in place
/// (activation_loops.inc; output_activation.h).
struct ActivationLoops {
  /// GELU (erf form) over n float32 elements.
  void (*gelu_f32)(float* x, int64_t n);
  /// GELU of n float32 elements into bfloat16 ones, rounded once.
  void (*gelu_f32_to_bf16)(const float* src, uint16_t* dst, int64_t n);
};

/// Depthwise convolutions, one output row at a time (depthwise_loops.inc).
struct DepthwiseLoops {
  /// One output row of a 3x3 depthwise convolution, stride 1, zero padding
  /// of one column each side, over channels-last rows of `width` pixels:
  /// rows[0..2] the input rows above, at and below it (nullptr or a row of
  /// zeros where the image ends), their pixels `in_stride` floats apart
  /// (channels, or more where the input is a slice of wider pixels); taps
  /// 9 x channels (tap 3 i + j of row i, column j), bias per channel; out
  /// width x channels.
  void (*depthwise3x3_row)(const float* const* rows, const float* taps, const float* bias,
                           int64_t width, int64_t channels, int64_t in_stride, float* out);
  /// The same for 5x5 (padding of two): rows[0..4], taps 25 x channels.
  void (*depthwise5x5_row)(const float* const* rows, const float* taps, const float* bias,
                           int64_t width, int64_t channels, int64_t in_stride, float* out);
  /// The 3x3 on bfloat16 rows (input and output; taps, bias and
  /// arithmetic float32, each output rounded once).
  void (*depthwise3x3_row_bf16)(const uint16_t* const* rows, const float* taps, const float* bias,
                                int64_t width, int64_t channels, int64_t in_stride, uint16_t* out);
  /// The 5x5 on float32 rows into a bfloat16 output row, each output
  /// rounded once (bfloat16 input rows widened by the caller first:
  /// depthwise_conv2d.cpp says why).
  void (*depthwise5x5_row_bf16_out)(const float* const* rows, const float* taps, const float* bias,
                                    int64_t width, int64_t channels, int64_t in_stride,
                                    uint16_t* out);
  /// Two consecutive output rows of a 3x3 one at once (out[0], out[1]),
  /// from the four input rows rows[0..3] (rows[0..2] for the first,
  /// rows[1..3] for the second): each input row is read once for both.
  void (*depthwise3x3_two_rows)(const float* const* rows, const float* taps, const float* bias,
                                int64_t width, int64_t channels, int64_t in_stride,
                                float* const* out);
  void (*depthwise3x3_two_rows_bf16)(const uint16_t* const* rows, const float* taps,
                                     const float* bias, int64_t width, int64_t channels,
                                     int64_t in_stride, uint16_t* const* out);
  /// The 3x3 on float32 rows into bfloat16 output rows, each output
  /// rounded once: one row, and two rows at once (the fused FFN's, whose
  /// hidden rows stay float32 in a bfloat16 plan: fused_ffn.cpp).
  void (*depthwise3x3_row_bf16_out)(const float* const* rows, const float* taps, const float* bias,
                                    int64_t width, int64_t channels, int64_t in_stride,
                                    uint16_t* out);
  void (*depthwise3x3_two_rows_bf16_out)(const float* const* rows, const float* taps,
                                         const float* bias, int64_t width, int64_t channels,
                                         int64_t in_stride, uint16_t* const* out);
};

/// The loops compiled for `isa`: one file per op and instruction set,
/// <op>_<isa>.cpp (rala_attention_avx512.cpp, ...), CMake giving every
/// *_avx2.cpp and *_avx512.cpp its instruction set's flags.
const RalaLoops& rala_loops(Isa isa);
const SoftmaxLoops& softmax_loops(Isa isa);
const LayerNormLoops& layer_norm_loops(Isa isa);
const ConvertLoops& convert_loops(Isa isa);
const ActivationLoops& activation_loops(Isa isa);
const DepthwiseLoops& depthwise_loops(Isa isa);

/// Keys per online-softmax block; keys and values are padded to a whole
/// number of blocks so that a block always loads whole vectors.
inline constexpr int64_t kKeyBlock = 64;
/// Most queries that share each key block (one tile of softmax_rows): a
/// block read into L1 once serves them all. 128 measured 3-5 % faster than
/// 64 at L = 3,800 (d = 64); beyond that no gain, and the tile's state
/// (640 bytes per query at d = 64) is on the stack.
inline constexpr int64_t kQueryTile = 128;
/// Floats of each of kt and vt (SoftmaxLoops) for L keys of dimension d.
inline constexpr int64_t softmax_buffer_floats(int64_t l_count, int d) {
  return (l_count + kKeyBlock - 1) / kKeyBlock * kKeyBlock * d;
}

/// Largest head dimension the kernels take (stack buffers are sized by it).
inline constexpr int kMaxHeadDim = 512;

}  // namespace ravlt::runtime::cpu
