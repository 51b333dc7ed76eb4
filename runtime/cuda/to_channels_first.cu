// ToChannelsFirst: NHWC -> NCHW.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

template <typename T>
__global__ void to_channels_first_kernel(const T* __restrict__ x, T* __restrict__ y, int n, int c,
                                         int h, int w) {
  const int64_t total = static_cast<int64_t>(n) * c * h * w;
  const int64_t hw = static_cast<int64_t>(h) * w;
  GRID_STRIDE(i, total) {
    // i indexes the output (b, k, p)
    const int64_t p = i % hw;
    const int64_t bk = i / hw;
    const int64_t b = bk / c, k = bk % c;
    y[i] = x[(b * hw + p) * c + k];
  }
}

}  // namespace

void launch_to_channels_first(DType s, const void* x, void* y, int n, int c, int h, int w,
                              cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    to_channels_first_kernel<<<grid_for(static_cast<int64_t>(n) * c * h * w), 256, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), n, c, h, w);
  });
}

}  // namespace ravlt::runtime::cuda
