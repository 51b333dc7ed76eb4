// ChannelSlice: a contiguous run of channels of every row.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

template <typename T>
__global__ void channel_slice_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                     int in_c, int begin, int out_c) {
  GRID_STRIDE(i, rows * out_c) {
    y[i] = x[(i / out_c) * in_c + begin + (i % out_c)];
  }
}

}  // namespace

void launch_channel_slice(DType s, const void* x, void* y, int64_t rows, int in_c, int begin,
                          int out_c, cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    channel_slice_kernel<<<grid_for(rows * out_c), 256, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), rows, in_c, begin, out_c);
  });
}

}  // namespace ravlt::runtime::cuda
