// LayerNorm over contiguous channels: one warp per row, two passes over the
// row (mean, then the variance of the centred values, as PyTorch computes).
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

__global__ void layer_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                  const float* __restrict__ beta, float* __restrict__ y,
                                  int64_t rows, int c, float epsilon) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const float* src = x + row * c;
  float sum = 0.0f;
  for (int k = lane; k < c; k += kWarp) sum += src[k];
  const float mean = warp_sum(sum) / static_cast<float>(c);
  float sq = 0.0f;
  for (int k = lane; k < c; k += kWarp) {
    const float d = src[k] - mean;
    sq += d * d;
  }
  const float inv = 1.0f / sqrtf(warp_sum(sq) / static_cast<float>(c) + epsilon);
  float* dst = y + row * c;
  for (int k = lane; k < c; k += kWarp) dst[k] = (src[k] - mean) * inv * gamma[k] + beta[k];
}

}  // namespace

void launch_layer_norm(const float* x, const float* gamma, const float* beta, float* y,
                       int64_t rows, int c, float epsilon, cudaStream_t stream) {
  layer_norm_kernel<<<blocks_for(rows, kWarpsPerBlock), kWarpsPerBlock * kWarp, 0, stream>>>(
      x, gamma, beta, y, rows, c, epsilon);
}

}  // namespace ravlt::runtime::cuda
