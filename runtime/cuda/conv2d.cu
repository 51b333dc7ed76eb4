// Direct convolution, NHWC, any kernel size, stride, padding and groups;
// bias and activation fused, float32 accumulation. One thread per output
// value, consecutive threads along the output channels, so that the
// [kh][kw][ci][co] weights are read coalesced and the input values are
// shared across a warp.
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

template <typename T>
__global__ void conv2d_kernel(ConvParams p, const T* __restrict__ x, const T* __restrict__ w,
                              const T* __restrict__ bias, T* __restrict__ y) {
  const int64_t total = static_cast<int64_t>(p.n) * p.out_h * p.out_w * p.out_c;
  const int in_per_group = p.in_c / p.groups, out_per_group = p.out_c / p.groups;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int co = static_cast<int>(i % p.out_c);
    int64_t rest = i / p.out_c;
    const int ox = static_cast<int>(rest % p.out_w);
    rest /= p.out_w;
    const int oy = static_cast<int>(rest % p.out_h);
    const int64_t b = rest / p.out_h;
    const int ci0 = (co / out_per_group) * in_per_group;
    float sum = load(bias, co);
    for (int ky = 0; ky < p.kernel_h; ++ky) {
      const int iy = oy * p.stride_h - p.pad_h + ky;
      if (iy < 0 || iy >= p.in_h) continue;
      for (int kx = 0; kx < p.kernel_w; ++kx) {
        const int ix = ox * p.stride_w - p.pad_w + kx;
        if (ix < 0 || ix >= p.in_w) continue;
        const T* src = x + ((b * p.in_h + iy) * p.in_w + ix) * p.in_c + ci0;
        const T* tap =
            w + (static_cast<int64_t>(ky * p.kernel_w + kx) * in_per_group) * p.out_c + co;
        for (int ci = 0; ci < in_per_group; ++ci) {
          sum += load(src, ci) * load(tap, static_cast<int64_t>(ci) * p.out_c);
        }
      }
    }
    store(y, i, activate(sum, p.act));
  }
}

constexpr int kColLanes = 32;  // threads along a row of the matrix (threadIdx.x)
constexpr int kColPixels = 8;  // rows (output pixels) per block (threadIdx.y)

// One row of the matrix per threadIdx.y: the pixel's coordinates are found
// once a row in 32-bit arithmetic (the host checks that the pixels fit),
// then consecutive threads copy consecutive (ky, kx, ci) columns, whose
// channels are contiguous in the input. U is the unit copied: 16 bytes
// (uint4) where a pixel's channels are a whole number of them, else one
// value; `in_c` counts units.
template <typename U>
__global__ void im2col_kernel(ConvParams p, int in_c, const U* __restrict__ x,
                              U* __restrict__ col) {
  const int depth = p.kernel_h * p.kernel_w * in_c;
  const int taps_w = p.kernel_w;
  const unsigned pixels = static_cast<unsigned>(p.n) * p.out_h * p.out_w;
  for (unsigned pix = blockIdx.x * kColPixels + threadIdx.y; pix < pixels;
       pix += gridDim.x * kColPixels) {
    const unsigned ox = pix % p.out_w, rest = pix / p.out_w;
    const unsigned oy = rest % p.out_h, b = rest / p.out_h;
    const int iy0 = static_cast<int>(oy) * p.stride_h - p.pad_h;
    const int ix0 = static_cast<int>(ox) * p.stride_w - p.pad_w;
    const U* image = x + static_cast<int64_t>(b) * p.in_h * p.in_w * in_c;
    U* dst = col + static_cast<int64_t>(pix) * depth;
    for (int k = threadIdx.x; k < depth; k += kColLanes) {
      const int tap = k / in_c, ci = k - tap * in_c;
      const int ky = tap / taps_w, kx = tap - ky * taps_w;
      const int iy = iy0 + ky, ix = ix0 + kx;
      const bool inside = iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w;
      dst[k] = inside ? image[(static_cast<int64_t>(iy) * p.in_w + ix) * in_c + ci] : U{};
    }
  }
}

}  // namespace

bool im2col_handles(const ConvParams& p) {
  const int64_t pixels = static_cast<int64_t>(p.n) * p.out_h * p.out_w;
  const int64_t depth = static_cast<int64_t>(p.kernel_h) * p.kernel_w * p.in_c;
  return pixels < (int64_t{1} << 31) && depth < (int64_t{1} << 31);
}

void launch_im2col(DType s, const ConvParams& p, const void* x, void* col, cudaStream_t stream) {
  const int64_t pixels = static_cast<int64_t>(p.n) * p.out_h * p.out_w;
  const int64_t blocks = (pixels + kColPixels - 1) / kColPixels;
  const unsigned grid = static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
  const dim3 block(kColLanes, kColPixels);
  // Whole 16-byte units where a pixel's channels are a multiple of 16 bytes
  // and both buffers start on 16 bytes (the arena aligns every value to 64).
  const size_t pixel_bytes = static_cast<size_t>(p.in_c) * dtype_size(s);
  const bool aligned =
      (reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(col)) % sizeof(uint4) == 0;
  if (pixel_bytes % sizeof(uint4) == 0 && aligned) {
    im2col_kernel<<<grid, block, 0, stream>>>(p, static_cast<int>(pixel_bytes / sizeof(uint4)),
                                              static_cast<const uint4*>(x),
                                              static_cast<uint4*>(col));
    return;
  }
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    im2col_kernel<<<grid, block, 0, stream>>>(p, p.in_c, static_cast<const T*>(x),
                                              static_cast<T*>(col));
  });
}

void launch_conv2d(DType s, const ConvParams& p, const void* x, const void* w_hwio,
                   const void* bias, void* y, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(p.n) * p.out_h * p.out_w * p.out_c;
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    conv2d_kernel<<<grid_for(total), 256, 0, stream>>>(
        p, static_cast<const T*>(x), static_cast<const T*>(w_hwio), static_cast<const T*>(bias),
        static_cast<T*>(y));
  });
}

}  // namespace ravlt::runtime::cuda
