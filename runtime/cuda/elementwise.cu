// The memory-bound small ops: layout change, channel slice, pooling, and the
// activations cuBLASLt's epilogues do not cover.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

__global__ void to_channels_last_kernel(const float* __restrict__ x, float* __restrict__ y, int n,
                                        int c, int h, int w) {
  const int64_t total = static_cast<int64_t>(n) * c * h * w;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // i indexes the output (b, yy, xx, k)
    const int k = static_cast<int>(i % c);
    const int64_t pixel = i / c;  // (b, yy, xx)
    const int64_t hw = static_cast<int64_t>(h) * w;
    const int64_t b = pixel / hw, p = pixel % hw;
    y[i] = x[(b * c + k) * hw + p];
  }
}

__global__ void channel_slice_kernel(const float* __restrict__ x, float* __restrict__ y,
                                     int64_t rows, int in_c, int begin, int out_c) {
  const int64_t total = rows * out_c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / out_c;
    y[i] = x[r * in_c + begin + (i % out_c)];
  }
}

__global__ void global_avg_pool_kernel(const float* __restrict__ x, float* __restrict__ y, int n,
                                       int64_t hw, int c) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(n) * c) return;
  const int64_t b = i / c, k = i % c;
  const float* src = x + b * hw * c + k;
  float sum = 0.0f;
  for (int64_t p = 0; p < hw; ++p) sum += src[p * c];
  y[i] = sum / static_cast<float>(hw);
}

__global__ void activation_kernel(float* __restrict__ y, int64_t count, Act act,
                                  const float* __restrict__ residual) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = activate(y[i], act);
    if (residual != nullptr) v += residual[i];
    y[i] = v;
  }
}

// A grid-stride launch: enough blocks to fill a large GPU, never more than needed.
int grid_for(int64_t count) {
  const int64_t blocks = (count + 255) / 256;
  return static_cast<int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace

void launch_to_channels_last(const float* x, float* y, int n, int c, int h, int w,
                             cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(n) * c * h * w;
  to_channels_last_kernel<<<grid_for(total), 256, 0, stream>>>(x, y, n, c, h, w);
}

void launch_channel_slice(const float* x, float* y, int64_t rows, int in_c, int begin, int out_c,
                          cudaStream_t stream) {
  channel_slice_kernel<<<grid_for(rows * out_c), 256, 0, stream>>>(x, y, rows, in_c, begin, out_c);
}

void launch_global_avg_pool(const float* x, float* y, int n, int64_t hw, int c,
                            cudaStream_t stream) {
  global_avg_pool_kernel<<<blocks_for(static_cast<int64_t>(n) * c, 128), 128, 0, stream>>>(x, y, n,
                                                                                           hw, c);
}

void launch_activation(float* y, int64_t count, Act act, const float* residual,
                       cudaStream_t stream) {
  activation_kernel<<<grid_for(count), 256, 0, stream>>>(y, count, act, residual);
}

}  // namespace ravlt::runtime::cuda
