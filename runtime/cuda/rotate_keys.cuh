// The rotated keys and the values of softmax attention, written once to
// scratch for the tiled kernels (softmax_attention.cu: float32;
// softmax_attention_mma.cu: the storage type), [image][head][token][d].
#pragma once

#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {

// rope(k) and v of every token of qkvo (N, H, W, 4C) as K.
template <typename T, typename K>
__global__ void rotate_keys_kernel(AttentionParams p, const T* __restrict__ qkvo,
                                   const float* __restrict__ angle, K* __restrict__ keys,
                                   K* __restrict__ values) {
  const int d = p.head_dim;
  const int64_t L = static_cast<int64_t>(p.h) * p.w, c = static_cast<int64_t>(p.heads) * d;
  const int64_t total = p.n * L * c;
  GRID_STRIDE(i, total) {
    // i walks qkvo's order: (b, j, head, t).
    const int t = static_cast<int>(i % d);
    const int head = static_cast<int>((i / d) % p.heads);
    const int64_t token = i / c, b = token / L, j = token % L;
    const T* k = qkvo + token * 4 * c + c + static_cast<int64_t>(head) * d;
    const int y = static_cast<int>(j / p.w), x = static_cast<int>(j % p.w);
    const int64_t at = ((b * p.heads + head) * L + j) * d + t;
    store(keys, at, rope(load(k, t), load(k, t ^ 1), t, rope_theta(angle, t, d, y, x)));
    store(values, at, load(k + c, t));
  }
}

}  // namespace ravlt::runtime::cuda
