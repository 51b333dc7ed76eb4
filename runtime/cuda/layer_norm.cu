// LayerNorm over contiguous channels: one warp per row, two passes over the
// row (mean, then the variance of the centred values, as PyTorch computes),
// in float32 whatever the storage.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;

template <typename T>
__global__ void layer_norm_kernel(const T* __restrict__ x, const T* __restrict__ gamma,
                                  const T* __restrict__ beta, T* __restrict__ y, int64_t rows,
                                  int c, float epsilon) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const T* src = x + row * c;
  float sum = 0.0f;
  for (int k = lane; k < c; k += kWarp) sum += load(src, k);
  const float mean = warp_sum(sum) / static_cast<float>(c);
  float sq = 0.0f;
  for (int k = lane; k < c; k += kWarp) {
    const float d = load(src, k) - mean;
    sq += d * d;
  }
  const float inv = 1.0f / sqrtf(warp_sum(sq) / static_cast<float>(c) + epsilon);
  T* dst = y + row * c;
  for (int k = lane; k < c; k += kWarp) {
    store(dst, k, (load(src, k) - mean) * inv * load(gamma, k) + load(beta, k));
  }
}

}  // namespace

void launch_layer_norm(DType s, const void* x, const void* gamma, const void* beta, void* y,
                       int64_t rows, int c, float epsilon, cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    layer_norm_kernel<<<blocks_for(rows, kWarpsPerBlock), kWarpsPerBlock * kWarp, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(gamma), static_cast<const T*>(beta),
        static_cast<T*>(y), rows, c, epsilon);
  });
}

}  // namespace ravlt::runtime::cuda
