// GlobalAvgPool: the mean over H and W, accumulated in float32.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

template <typename T>
__global__ void global_avg_pool_kernel(const T* __restrict__ x, T* __restrict__ y, int n,
                                       int64_t hw, int c) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<int64_t>(n) * c) return;
  const int64_t b = i / c, k = i % c;
  const T* src = x + b * hw * c + k;
  float sum = 0.0f;
  for (int64_t p = 0; p < hw; ++p) sum += load(src, p * c);
  store(y, i, sum / static_cast<float>(hw));
}

}  // namespace

void launch_global_avg_pool(DType s, const void* x, void* y, int n, int64_t hw, int c,
                            cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    global_avg_pool_kernel<<<blocks_for(static_cast<int64_t>(n) * c, 128), 128, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), n, hw, c);
  });
}

}  // namespace ravlt::runtime::cuda
