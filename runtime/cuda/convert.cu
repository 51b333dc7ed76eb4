// Element type conversions on the device (a 16-bit session's float32
// input and output).
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

template <typename From, typename To>
__global__ void convert_kernel(const From* __restrict__ x, To* __restrict__ y, int64_t count) {
  GRID_STRIDE(i, count) {
    store(y, i, load(x, i));
  }
}

}  // namespace

void launch_convert(const void* x, DType from, void* y, DType to, int64_t count,
                    cudaStream_t stream) {
  with_storage(from, [&](auto from_type) {
    using F = decltype(from_type);
    with_storage(to, [&](auto to_type) {
      using T = decltype(to_type);
      convert_kernel<<<grid_for(count), 256, 0, stream>>>(static_cast<const F*>(x),
                                                          static_cast<T*>(y), count);
    });
  });
}

}  // namespace ravlt::runtime::cuda
