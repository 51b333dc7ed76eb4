// Host-side entry points of our CUDA kernels (the .cu files beside this).
// Each enqueues its kernel on `stream` and returns; the caller checks
// cudaGetLastError(). Layouts are channels-last (N, H, W, C) throughout.
//
// Activations and weights are stored as `DType` (float32, float16 or
// bfloat16: one type per session) and every kernel computes in float32;
// RoPE angles and RALA's scratch stay float32 whatever the storage.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "ravlt/dtype.h"

namespace ravlt::runtime::cuda {

/// The values of runtime::Activation.
enum class Act : int { kNone = 0, kGelu = 1, kSwish = 2 };

/// y = x converted, `count` elements (float32 <-> the storage type).
void launch_convert(const void* x, DType from, void* y, DType to, int64_t count,
                    cudaStream_t stream);
/// Whether launch_transpose takes these sizes (32-bit indices in an image).
bool transpose_handles(int64_t batches, int64_t rows, int64_t cols);
/// y[b][j][i] = x[b][i][j], x of (batches, rows, cols): NCHW -> NHWC with
/// rows = C, cols = H * W; NHWC -> NCHW with rows = H * W, cols = C.
void launch_transpose(DType s, const void* x, void* y, int batches, int rows, int cols,
                      cudaStream_t stream);
/// y[r][k] = x[r][begin + k] for k < out_c; rows of in_c.
void launch_channel_slice(DType s, const void* x, void* y, int64_t rows, int in_c, int begin,
                          int out_c, cudaStream_t stream);
/// y[b][c] = mean over hw of x[b][.][c].
void launch_global_avg_pool(DType s, const void* x, void* y, int n, int64_t hw, int c,
                            cudaStream_t stream);
/// y = act(y) (+ residual, where given), elementwise over `count` values.
void launch_activation(DType s, void* y, int64_t count, Act act, const void* residual,
                       cudaStream_t stream);
/// LayerNorm over the last dimension (c) of `rows` rows.
void launch_layer_norm(DType s, const void* x, const void* gamma, const void* beta, void* y,
                       int64_t rows, int c, float epsilon, cudaStream_t stream);

struct ConvParams {
  int n, in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, groups;
  Act act;
};
/// The im2col matrix of a convolution (groups 1): row (b, oy, ox), column
/// (ky, kx, ci), zero where the window leaves the image.
/// Whether launch_im2col takes `p` (its pixels and row length fit 31 bits).
bool im2col_handles(const ConvParams& p);
void launch_im2col(DType s, const ConvParams& p, const void* x, void* col, cudaStream_t stream);
/// Convolution, NHWC in and out; weights [kh][kw][in_c / groups][out_c].
void launch_conv2d(DType s, const ConvParams& p, const void* x, const void* w_hwio,
                   const void* bias, void* y, cudaStream_t stream);
/// Whether launch_depthwise_conv2d takes `p`: depthwise (groups = in_c =
/// out_c), square 3x3, 5x5 or 7x7 kernel, stride 1, sizes within its grid.
bool depthwise_conv2d_handles(const ConvParams& p);
/// The same convolution as launch_conv2d, for the shapes above, faster.
void launch_depthwise_conv2d(DType s, const ConvParams& p, const void* x, const void* w_hwio,
                             const void* bias, void* y, cudaStream_t stream);

struct AttentionParams {
  int n, h, w;  // tokens: h x w per image
  int heads, head_dim;
};
/// Scratch the RALA kernels need (bytes).
size_t rala_scratch_bytes(const AttentionParams& p);
/// RALA (spec section 3.3) on qkvo (N, H, W, 4C), lepe (N, H, W, C), the
/// RoPE angles (head_dim / 2, float32); out (N, H, W, C) = (attention +
/// lepe) * o.
void launch_rala_attention(DType s, const AttentionParams& p, const void* qkvo, const void* lepe,
                           const float* angle, void* out, void* scratch, cudaStream_t stream);
/// Scratch the softmax attention kernels need (bytes): the rotated keys and
/// the values, in the storage type on tensor cores, else float32 where
/// head_dim <= 64; else none.
size_t softmax_scratch_bytes(DType s, const AttentionParams& p);
/// Softmax attention with RoPE, same operands and output; online softmax,
/// no L x L matrix.
void launch_softmax_attention(DType s, const AttentionParams& p, const void* qkvo, const void* lepe,
                              const float* angle, void* out, void* scratch, cudaStream_t stream);
/// Whether launch_softmax_attention_mma takes these: 16-bit storage,
/// head_dim a multiple of 16 up to 64, and enough (image, head, 64
/// queries) blocks to fill the GPU without splitting the keys.
bool softmax_mma_handles(DType s, const AttentionParams& p);
/// Its scratch (bytes): the rotated keys and the values, 16-bit.
size_t softmax_mma_scratch_bytes(const AttentionParams& p);
/// Softmax attention on tensor cores (softmax_attention_mma.cu).
void launch_softmax_attention_mma(DType s, const AttentionParams& p, const void* qkvo,
                                  const void* lepe, const float* angle, void* out, void* scratch,
                                  cudaStream_t stream);

}  // namespace ravlt::runtime::cuda
