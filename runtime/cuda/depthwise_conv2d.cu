// Depthwise convolution (groups = in_c = out_c), NHWC, square kernel of 3,
// 5 or 7 taps, stride 1: the pos, dwconv and lepe convolutions of every
// RAVLT block. Bias and activation fused, float32 accumulation in the same
// order as conv2d.cu's direct kernel (bias, then the taps row by row).
//
// Each thread holds one channel of kTileX neighbouring outputs of one row:
// it reads the kTileX - 1 + K inputs of each kernel row once (the direct
// kernel reads K x K per output) and computes every index in 32 bits but
// the row's base offset (the direct kernel divides 64-bit indices for
// every output). Consecutive threads take consecutive channels, so each
// load and store of a warp is one contiguous run.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

constexpr int kChannels = 64;  // threads along the channels (threadIdx.x)
constexpr int kTiles = 4;      // tiles along the row per block (threadIdx.y)
constexpr int kTileX = 4;      // outputs along the row per thread

template <typename T, int K>
__global__ void __launch_bounds__(kChannels* kTiles)
    depthwise_kernel(ConvParams p, const T* __restrict__ x, const T* __restrict__ w,
                     const T* __restrict__ bias, T* __restrict__ y) {
  const int c = blockIdx.y * kChannels + threadIdx.x;
  const int ox0 = (blockIdx.z * kTiles + threadIdx.y) * kTileX;
  if (c >= p.out_c || ox0 >= p.out_w) return;
  const int row = blockIdx.x;  // b * out_h + oy
  const int b = row / p.out_h, oy = row - b * p.out_h;
  const int channels = p.out_c;
  const float b0 = load(bias, c);
  float acc[kTileX];
#pragma unroll
  for (int t = 0; t < kTileX; ++t) acc[t] = b0;

  constexpr int kSpan = kTileX - 1 + K;
  const int ix0 = ox0 - p.pad_w;
  for (int ky = 0; ky < K; ++ky) {
    const int iy = oy - p.pad_h + ky;
    if (iy < 0 || iy >= p.in_h) continue;
    float wk[K];
#pragma unroll
    for (int kx = 0; kx < K; ++kx) wk[kx] = load(w, (ky * K + kx) * channels + c);
    const T* src = x + (static_cast<int64_t>(b) * p.in_h + iy) * p.in_w * channels + c;
#pragma unroll
    for (int j = 0; j < kSpan; ++j) {
      const int ix = ix0 + j;
      const float v =
          ix >= 0 && ix < p.in_w ? load(src, static_cast<int64_t>(ix) * channels) : 0.0f;
#pragma unroll
      for (int t = 0; t < kTileX; ++t) {
        const int kx = j - t;
        if (kx >= 0 && kx < K) acc[t] += v * wk[kx];
      }
    }
  }
  T* dst = y + (static_cast<int64_t>(row) * p.out_w + ox0) * channels + c;
#pragma unroll
  for (int t = 0; t < kTileX; ++t) {
    if (ox0 + t < p.out_w) store(dst, static_cast<int64_t>(t) * channels, activate(acc[t], p.act));
  }
}

dim3 depthwise_grid(const ConvParams& p) {
  const int64_t per_block = static_cast<int64_t>(kTiles) * kTileX;
  return dim3(static_cast<unsigned>(static_cast<int64_t>(p.n) * p.out_h),
              static_cast<unsigned>((p.out_c + kChannels - 1) / kChannels),
              static_cast<unsigned>((p.out_w + per_block - 1) / per_block));
}

}  // namespace

bool depthwise_conv2d_handles(const ConvParams& p) {
  const int k = p.kernel_h;
  const bool shape = p.groups == p.in_c && p.in_c == p.out_c && p.kernel_w == k &&
                     (k == 3 || k == 5 || k == 7) && p.stride_h == 1 && p.stride_w == 1;
  if (!shape) return false;
  // Every index but a row's base is 32-bit; the grid's y and z stay in range.
  const int64_t row_elements = static_cast<int64_t>(p.in_w) * p.in_c;
  const dim3 g = depthwise_grid(p);
  return static_cast<int64_t>(p.n) * p.out_h < (int64_t{1} << 31) && row_elements < (1 << 30) &&
         g.y < 65536 && g.z < 65536;
}

void launch_depthwise_conv2d(DType s, const ConvParams& p, const void* x, const void* w_hwio,
                             const void* bias, void* y, cudaStream_t stream) {
  const dim3 grid = depthwise_grid(p), block(kChannels, kTiles);
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    const T* in = static_cast<const T*>(x);
    const T* wt = static_cast<const T*>(w_hwio);
    const T* bs = static_cast<const T*>(bias);
    T* out = static_cast<T*>(y);
    if (p.kernel_h == 3) {
      depthwise_kernel<T, 3><<<grid, block, 0, stream>>>(p, in, wt, bs, out);
    } else if (p.kernel_h == 5) {
      depthwise_kernel<T, 5><<<grid, block, 0, stream>>>(p, in, wt, bs, out);
    } else {
      depthwise_kernel<T, 7><<<grid, block, 0, stream>>>(p, in, wt, bs, out);
    }
  });
}

}  // namespace ravlt::runtime::cuda
