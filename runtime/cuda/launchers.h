// Host-side entry points of our CUDA kernels (the .cu files beside this).
// Each enqueues its kernel on `stream` and returns; the caller checks
// cudaGetLastError(). Layouts are channels-last (N, H, W, C) throughout.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace ravlt::runtime::cuda {

/// The values of runtime::Activation.
enum class Act : int { kNone = 0, kGelu = 1, kSwish = 2 };

/// NCHW -> NHWC.
void launch_to_channels_last(const float* x, float* y, int n, int c, int h, int w,
                             cudaStream_t stream);
/// y[r][k] = x[r][begin + k] for k < out_c; rows of in_c.
void launch_channel_slice(const float* x, float* y, int64_t rows, int in_c, int begin, int out_c,
                          cudaStream_t stream);
/// y[b][c] = mean over hw of x[b][.][c].
void launch_global_avg_pool(const float* x, float* y, int n, int64_t hw, int c,
                            cudaStream_t stream);
/// y = act(y) (+ residual, where given), elementwise over `count` values.
void launch_activation(float* y, int64_t count, Act act, const float* residual,
                       cudaStream_t stream);
/// LayerNorm over the last dimension (c) of `rows` rows.
void launch_layer_norm(const float* x, const float* gamma, const float* beta, float* y,
                       int64_t rows, int c, float epsilon, cudaStream_t stream);

struct ConvParams {
  int n, in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, groups;
  Act act;
};
/// Convolution, NHWC in and out; weights [kh][kw][in_c / groups][out_c].
void launch_conv2d(const ConvParams& p, const float* x, const float* w_hwio, const float* bias,
                   float* y, cudaStream_t stream);

struct AttentionParams {
  int n, h, w;  // tokens: h x w per image
  int heads, head_dim;
};
/// Scratch the RALA kernels need (bytes).
size_t rala_scratch_bytes(const AttentionParams& p);
/// RALA (spec section 3.3) on qkvo (N, H, W, 4C), lepe (N, H, W, C), the
/// RoPE angles (head_dim / 2); out (N, H, W, C) = (attention + lepe) * o.
void launch_rala_attention(const AttentionParams& p, const float* qkvo, const float* lepe,
                           const float* angle, float* out, void* scratch, cudaStream_t stream);
/// Softmax attention with RoPE, same operands and output; online softmax,
/// no L x L matrix.
void launch_softmax_attention(const AttentionParams& p, const float* qkvo, const float* lepe,
                              const float* angle, float* out, cudaStream_t stream);

}  // namespace ravlt::runtime::cuda
