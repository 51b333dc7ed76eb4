// ChannelSlice: a contiguous run of channels of every row.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

constexpr int kColumns = 64;  // threads along a row (threadIdx.x)
constexpr int kRows = 4;      // rows per block (threadIdx.y)

// A row per threadIdx.y, consecutive threads on consecutive channels: no
// division per element.
template <typename T>
__global__ void channel_slice_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                     int in_c, int begin, int out_c) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kRows) + threadIdx.y; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kRows) {
    const T* src = x + r * in_c + begin;
    T* dst = y + r * out_c;
    for (int k = threadIdx.x; k < out_c; k += kColumns) dst[k] = src[k];
  }
}

}  // namespace

void launch_channel_slice(DType s, const void* x, void* y, int64_t rows, int in_c, int begin,
                          int out_c, cudaStream_t stream) {
  const int64_t blocks = (rows + kRows - 1) / kRows;
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    channel_slice_kernel<<<static_cast<unsigned>(blocks < 65536 ? blocks : 65536),
                           dim3(kColumns, kRows), 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), rows, in_c, begin, out_c);
  });
}

}  // namespace ravlt::runtime::cuda
