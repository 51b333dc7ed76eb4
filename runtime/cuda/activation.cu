// The activations cuBLASLt's epilogues do not cover (erf GELU, swish),
// with the residual added after: Linear and Conv2d finish with it.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

template <typename T>
__global__ void activation_kernel(T* __restrict__ y, int64_t count, Act act,
                                  const T* __restrict__ residual) {
  GRID_STRIDE(i, count) {
    float v = activate(load(y, i), act);
    if (residual != nullptr) v += load(residual, i);
    store(y, i, v);
  }
}

}  // namespace

void launch_activation(DType s, void* y, int64_t count, Act act, const void* residual,
                       cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    activation_kernel<<<grid_for(count), 256, 0, stream>>>(static_cast<T*>(y), count, act,
                                                           static_cast<const T*>(residual));
  });
}

}  // namespace ravlt::runtime::cuda
