// The memory-bound small ops: conversions, layout change, channel slice,
// pooling, and the activations cuBLASLt's epilogues do not cover.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

#define GRID_STRIDE(i, total)                                                                \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (total); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename From, typename To>
__global__ void convert_kernel(const From* __restrict__ x, To* __restrict__ y, int64_t count) {
  GRID_STRIDE(i, count) {
    store(y, i, load(x, i));
  }
}

template <typename T>
__global__ void to_channels_last_kernel(const T* __restrict__ x, T* __restrict__ y, int n, int c,
                                        int h, int w) {
  const int64_t total = static_cast<int64_t>(n) * c * h * w;
  const int64_t hw = static_cast<int64_t>(h) * w;
  GRID_STRIDE(i, total) {
    // i indexes the output (b, yy, xx, k)
    const int k = static_cast<int>(i % c);
    const int64_t pixel = i / c;  // b * hw + p
    const int64_t b = pixel / hw, p = pixel % hw;
    y[i] = x[(b * c + k) * hw + p];
  }
}

template <typename T>
__global__ void channel_slice_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                                     int in_c, int begin, int out_c) {
  GRID_STRIDE(i, rows * out_c) {
    y[i] = x[(i / out_c) * in_c + begin + (i % out_c)];
  }
}

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

void launch_convert(const void* x, Storage from, void* y, Storage to, int64_t count,
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

void launch_to_channels_last(Storage s, const void* x, void* y, int n, int c, int h, int w,
                             cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    to_channels_last_kernel<<<grid_for(static_cast<int64_t>(n) * c * h * w), 256, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), n, c, h, w);
  });
}

void launch_channel_slice(Storage s, const void* x, void* y, int64_t rows, int in_c, int begin,
                          int out_c, cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    channel_slice_kernel<<<grid_for(rows * out_c), 256, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), rows, in_c, begin, out_c);
  });
}

void launch_global_avg_pool(Storage s, const void* x, void* y, int n, int64_t hw, int c,
                            cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    global_avg_pool_kernel<<<blocks_for(static_cast<int64_t>(n) * c, 128), 128, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), n, hw, c);
  });
}

void launch_activation(Storage s, void* y, int64_t count, Act act, const void* residual,
                       cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    activation_kernel<<<grid_for(count), 256, 0, stream>>>(static_cast<T*>(y), count, act,
                                                           static_cast<const T*>(residual));
  });
}

}  // namespace ravlt::runtime::cuda
