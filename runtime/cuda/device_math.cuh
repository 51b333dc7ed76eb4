// Device helpers shared by our kernels: activations, RoPE, warp reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "runtime/cuda/launchers.h"

namespace ravlt::runtime::cuda {

constexpr int kWarp = 32;

// GELU with erf (nn.GELU's default; cuBLASLt's GELU epilogue is the tanh
// approximation, which differs by up to 4e-4, so it is not used).
__device__ __forceinline__ float gelu(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

__device__ __forceinline__ float swish(float x) {
  return x / (1.0f + expf(-x));
}

__device__ __forceinline__ float activate(float x, Act act) {
  if (act == Act::kGelu) return gelu(x);
  if (act == Act::kSwish) return swish(x);
  return x;
}

// elu(x) + 1: the RALA feature map. NaN stays NaN.
__device__ __forceinline__ float elu_plus_one(float x) {
  return x > 0.0f ? x + 1.0f : expf(x);
}

// RoPE angle of channel t (of head_dim d) at token (y, x): the first half of
// the channels turn with the row, the second with the column (float32
// product, as the reference computes its tables).
__device__ __forceinline__ float rope_theta(const float* angle, int t, int d, int y, int x) {
  const int half = d / 2;
  return t < half ? static_cast<float>(y) * angle[t] : static_cast<float>(x) * angle[t - half];
}

// rope(u)[t] = u[t] cos + r[t] sin, r = (-u[1], u[0], -u[3], u[2], ...):
// `u` is channel t's value, `partner` channel t ^ 1's.
__device__ __forceinline__ float rope(float u, float partner, int t, float theta) {
  float s, c;
  sincosf(theta, &s, &c);
  const float r = (t & 1) ? partner : -partner;
  return u * c + r * s;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// Loads and stores of the storage types, computing in float32.
__device__ __forceinline__ float load(const float* p, int64_t i) {
  return p[i];
}
__device__ __forceinline__ float load(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store(float* p, int64_t i, float v) {
  p[i] = v;
}
__device__ __forceinline__ void store(__half* p, int64_t i, float v) {
  p[i] = __float2half_rn(v);
}
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// Calls f(T{}) with T the C++ type of storage `s` (host side).
template <typename F>
void with_storage(DType s, F&& f) {
  if (s == DType::kFloat16) {
    f(__half{});
  } else if (s == DType::kBFloat16) {
    f(__nv_bfloat16{});
  } else {
    f(float{});
  }
}

// A grid-stride launch: enough blocks to fill a large GPU, never more than needed.
inline int grid_for(int64_t count, int threads = 256) {
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<int>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

inline int blocks_for(int64_t count, int threads) {
  return static_cast<int>((count + threads - 1) / threads);
}

// The loop of a grid-stride kernel: i over [0, total).
#define GRID_STRIDE(i, total)                                                                \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (total); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

}  // namespace ravlt::runtime::cuda
