// Softmax attention with RoPE for stages 3-4, with an online softmax
// (running max and sum), so no L x L matrix exists. Two kernels:
//  - tiled (head_dim <= 64, every published model's softmax stages): the
//    rotated keys and the values are first written once, float32, to
//    scratch ([image][head][token][d]); then one thread per query, 128
//    queries of one (image, head) per block, with its rotated query and its
//    output accumulator in registers, walks the keys in tiles of 32 staged
//    in shared memory (every thread reads the same key: broadcast). Where
//    that makes too few blocks to fill the GPU (a batch of one), the keys
//    are split in runs of tiles: each block keeps its run's running max,
//    sum and unnormalised output in scratch, and a combining pass (a warp
//    per query) adds the runs in order;
//    (16-bit storage at larger batches runs on tensor cores instead:
//    softmax_attention_mma.cu);
//  - streaming (any even head_dim up to 512): one warp per query, each lane
//    holding channels lane, lane + 32, ..., rotating each key as it reads
//    it. Measured on an H200 at batch 256, RAVLT-S: see the README.
#include <cfloat>

#include "runtime/cuda/device_math.cuh"
#include "runtime/cuda/rotate_keys.cuh"

namespace ravlt::runtime::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kPerLane = 16;  // head_dim / 32, at most

template <typename T>
__global__ void softmax_attention_kernel(AttentionParams p, const T* __restrict__ qkvo,
                                         const T* __restrict__ lepe,
                                         const float* __restrict__ angle, T* __restrict__ out) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t L = static_cast<int64_t>(p.h) * p.w;
  const int64_t token = blockIdx.x * static_cast<int64_t>(kWarps) + warp;
  if (token >= p.n * L) return;
  const int head = blockIdx.y, d = p.head_dim;
  const int64_t c = static_cast<int64_t>(p.heads) * d, row = 4 * c;
  const int64_t b = token / L, i = token % L;
  const T* q = qkvo + token * row + static_cast<int64_t>(head) * d;
  const int qy = static_cast<int>(i / p.w), qx = static_cast<int>(i % p.w);

  float rq[kPerLane], acc[kPerLane];
#pragma unroll
  for (int s = 0; s < kPerLane; ++s) {
    const int t = lane + s * kWarp;
    rq[s] = t < d ? rope(load(q, t), load(q, t ^ 1), t, rope_theta(angle, t, d, qy, qx)) : 0.0f;
    acc[s] = 0.0f;
  }
  const float root_d = sqrtf(static_cast<float>(d));
  float running_max = -FLT_MAX, running_sum = 0.0f;
  const T* keys = qkvo + b * L * row + c + static_cast<int64_t>(head) * d;
  for (int64_t j = 0; j < L; ++j) {
    const T* k = keys + j * row;
    const T* v = k + c;
    const int ky = static_cast<int>(j / p.w), kx = static_cast<int>(j % p.w);
    float dot = 0.0f;
#pragma unroll
    for (int s = 0; s < kPerLane; ++s) {
      const int t = lane + s * kWarp;
      if (t < d)
        dot += rq[s] * rope(load(k, t), load(k, t ^ 1), t, rope_theta(angle, t, d, ky, kx));
    }
    const float score = warp_sum(dot) / root_d;
    const float new_max = fmaxf(running_max, score);
    const float rescale = expf(running_max - new_max);
    const float weight = expf(score - new_max);
    running_sum = running_sum * rescale + weight;
#pragma unroll
    for (int s = 0; s < kPerLane; ++s) {
      const int t = lane + s * kWarp;
      if (t < d) acc[s] = acc[s] * rescale + weight * load(v, t);
    }
    running_max = new_max;
  }
  const int64_t at = token * c + static_cast<int64_t>(head) * d;
  const T* o = q + 3 * c;
#pragma unroll
  for (int s = 0; s < kPerLane; ++s) {
    const int t = lane + s * kWarp;
    if (t < d) store(out, at + t, (acc[s] / running_sum + load(lepe, at + t)) * load(o, t));
  }
}

constexpr int kTiledMaxDim = 64;
constexpr int kTiledQueries = 128;  // threads per block, one query each
constexpr int kKeyTile = 32;

constexpr int kTargetBlocks = 256;  // below this, the keys are split

// How many runs of key tiles each (query block, head, image) is split into.
int key_splits(const AttentionParams& p) {
  const int64_t L = static_cast<int64_t>(p.h) * p.w;
  const int64_t blocks = (L + kTiledQueries - 1) / kTiledQueries * p.heads * p.n;
  const int64_t tiles = (L + kKeyTile - 1) / kKeyTile;
  if (blocks >= kTargetBlocks) return 1;
  const int64_t wanted = (kTargetBlocks + blocks - 1) / blocks;
  return static_cast<int>(wanted < tiles ? wanted : tiles);
}

// A split run's result for one query and head: the unnormalised output
// [d], then its running max and sum; [image][head][split][query][d + 2].
__device__ __forceinline__ int64_t run_offset(const AttentionParams& p, int64_t b, int head,
                                              int split, int splits, int64_t i, int64_t L) {
  return (((b * p.heads + head) * splits + split) * L + i) * (p.head_dim + 2);
}

// Pass 2: grid (query blocks, heads, images x splits), kTiledQueries
// threads; split `s` takes key tiles [s * per, (s + 1) * per).
template <typename T>
__global__ void __launch_bounds__(kTiledQueries)
    tiled_softmax_attention_kernel(AttentionParams p, const T* __restrict__ qkvo,
                                   const T* __restrict__ lepe, const float* __restrict__ angle,
                                   const float* __restrict__ keys, const float* __restrict__ values,
                                   T* __restrict__ out, int splits, float* __restrict__ partial) {
  __shared__ float4 key_tile[kKeyTile][kTiledMaxDim / 4];
  __shared__ float4 value_tile[kKeyTile][kTiledMaxDim / 4];
  const int d = p.head_dim, head = blockIdx.y;
  const int split = static_cast<int>(blockIdx.z % splits);
  const int64_t b = blockIdx.z / splits, L = static_cast<int64_t>(p.h) * p.w;
  const int64_t per = ((L + kKeyTile - 1) / kKeyTile + splits - 1) / splits * kKeyTile;
  const int64_t key_begin = split * per;
  const int64_t key_end = key_begin + per < L ? key_begin + per : L;
  const int64_t c = static_cast<int64_t>(p.heads) * d;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kTiledQueries + threadIdx.x;
  const bool active = i < L;
  const int64_t token = b * L + (active ? i : 0);
  const T* q = qkvo + token * 4 * c + static_cast<int64_t>(head) * d;
  const int qy = static_cast<int>((active ? i : 0) / p.w),
            qx = static_cast<int>((active ? i : 0) % p.w);
  const float inv_root_d = rsqrtf(static_cast<float>(d));
  float rq[kTiledMaxDim], acc[kTiledMaxDim];
#pragma unroll
  for (int t = 0; t < kTiledMaxDim; ++t) {
    rq[t] = t < d
                ? rope(load(q, t), load(q, t ^ 1), t, rope_theta(angle, t, d, qy, qx)) * inv_root_d
                : 0.0f;
    acc[t] = 0.0f;
  }
  float running_max = -FLT_MAX, running_sum = 0.0f;
  const float* head_keys = keys + (b * p.heads + head) * L * d;
  const float* head_values = values + (b * p.heads + head) * L * d;
  float* key_floats = &key_tile[0][0].x;
  float* value_floats = &value_tile[0][0].x;
  for (int64_t j0 = key_begin; j0 < key_end; j0 += kKeyTile) {
    const int keys_here = static_cast<int>(key_end - j0 < kKeyTile ? key_end - j0 : kKeyTile);
    __syncthreads();  // the previous tile has been read by every thread
    for (int e = threadIdx.x; e < kKeyTile * kTiledMaxDim; e += kTiledQueries) {
      const int jj = e / kTiledMaxDim, t = e % kTiledMaxDim;
      const bool inside = jj < keys_here && t < d;
      const int64_t at = (j0 + jj) * d + t;
      key_floats[e] = inside ? head_keys[at] : 0.0f;
      value_floats[e] = inside ? head_values[at] : 0.0f;
    }
    __syncthreads();
    float score[kKeyTile];
    float tile_max = -FLT_MAX;
#pragma unroll
    for (int jj = 0; jj < kKeyTile; ++jj) {
      float s = 0.0f;
#pragma unroll
      for (int t4 = 0; t4 < kTiledMaxDim / 4; ++t4) {
        const float4 k4 = key_tile[jj][t4];
        s += rq[4 * t4] * k4.x + rq[4 * t4 + 1] * k4.y + rq[4 * t4 + 2] * k4.z +
             rq[4 * t4 + 3] * k4.w;
      }
      score[jj] = jj < keys_here ? s : -FLT_MAX;
      tile_max = fmaxf(tile_max, score[jj]);
    }
    const float new_max = fmaxf(running_max, tile_max);
    const float rescale = expf(running_max - new_max);
    running_sum *= rescale;
#pragma unroll
    for (int t = 0; t < kTiledMaxDim; ++t) acc[t] *= rescale;
#pragma unroll
    for (int jj = 0; jj < kKeyTile; ++jj) {
      const float weight = jj < keys_here ? expf(score[jj] - new_max) : 0.0f;
      running_sum += weight;
#pragma unroll
      for (int t4 = 0; t4 < kTiledMaxDim / 4; ++t4) {
        const float4 v4 = value_tile[jj][t4];
        acc[4 * t4] += weight * v4.x;
        acc[4 * t4 + 1] += weight * v4.y;
        acc[4 * t4 + 2] += weight * v4.z;
        acc[4 * t4 + 3] += weight * v4.w;
      }
    }
    running_max = new_max;
  }
  if (!active) return;
  if (splits > 1) {
    float* result = partial + run_offset(p, b, head, split, splits, i, L);
#pragma unroll
    for (int t = 0; t < kTiledMaxDim; ++t) {
      if (t < d) result[t] = acc[t];
    }
    result[d] = running_max;
    result[d + 1] = running_sum;
    return;
  }
  const int64_t at = token * c + static_cast<int64_t>(head) * d;
  const T* o = q + 3 * c;
  const float inv_sum = 1.0f / running_sum;
#pragma unroll
  for (int t = 0; t < kTiledMaxDim; ++t) {
    if (t < d) store(out, at + t, (acc[t] * inv_sum + load(lepe, at + t)) * load(o, t));
  }
}

constexpr int kCombineWarps = 4;

// Pass 3 where the keys were split: a warp per (query, head), grid
// (tokens / 4, heads); the runs' results rescaled to the largest max and
// added in split order.
template <typename T>
__global__ void combine_runs_kernel(AttentionParams p, const T* __restrict__ qkvo,
                                    const T* __restrict__ lepe, const float* __restrict__ partial,
                                    int splits, T* __restrict__ out) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t L = static_cast<int64_t>(p.h) * p.w;
  const int64_t token = blockIdx.x * static_cast<int64_t>(kCombineWarps) + warp;
  if (token >= p.n * L) return;
  const int head = blockIdx.y, d = p.head_dim;
  const int64_t b = token / L, i = token % L;
  const float* first = partial + run_offset(p, b, head, 0, splits, i, L);
  const int64_t stride = L * (d + 2);  // from one split's result to the next
  float top = -FLT_MAX;
  for (int s = 0; s < splits; ++s) top = fmaxf(top, first[s * stride + d]);
  float sum = 0.0f;
  for (int s = 0; s < splits; ++s) {
    sum += first[s * stride + d + 1] * expf(first[s * stride + d] - top);
  }
  const float inv_sum = 1.0f / sum;
  const int64_t c = static_cast<int64_t>(p.heads) * d;
  const int64_t at = token * c + static_cast<int64_t>(head) * d;
  const T* o = qkvo + token * 4 * c + 3 * c + static_cast<int64_t>(head) * d;
  for (int t = lane; t < d; t += kWarp) {
    float v = 0.0f;
    for (int s = 0; s < splits; ++s) {
      v += first[s * stride + t] * expf(first[s * stride + d] - top);
    }
    store(out, at + t, (v * inv_sum + load(lepe, at + t)) * load(o, t));
  }
}

bool tiled(const AttentionParams& p) {
  return p.head_dim <= kTiledMaxDim;
}

}  // namespace

size_t softmax_scratch_bytes(DType storage, const AttentionParams& p) {
  if (softmax_mma_handles(storage, p)) return softmax_mma_scratch_bytes(p);
  if (!tiled(p)) return 0;
  const size_t rows = static_cast<size_t>(p.n) * p.h * p.w * p.heads;
  const int splits = key_splits(p);
  const size_t runs = splits > 1 ? rows * splits * (p.head_dim + 2) : 0;
  return (2 * rows * p.head_dim + runs) * sizeof(float);
}

void launch_softmax_attention(DType storage, const AttentionParams& p, const void* qkvo,
                              const void* lepe, const float* angle, void* out, void* scratch,
                              cudaStream_t stream) {
  if (softmax_mma_handles(storage, p)) {
    launch_softmax_attention_mma(storage, p, qkvo, lepe, angle, out, scratch, stream);
    return;
  }
  const int64_t tokens = static_cast<int64_t>(p.n) * p.h * p.w;
  with_storage(storage, [&](auto type) {
    using T = decltype(type);
    const T* x = static_cast<const T*>(qkvo);
    if (tiled(p)) {
      float* keys = static_cast<float*>(scratch);
      float* values = keys + tokens * p.heads * p.head_dim;
      rotate_keys_kernel<<<grid_for(tokens * p.heads * p.head_dim), 256, 0, stream>>>(p, x, angle,
                                                                                      keys, values);
      float* partial = values + tokens * p.heads * p.head_dim;
      const int64_t L = static_cast<int64_t>(p.h) * p.w;
      const int splits = key_splits(p);
      const T* lp = static_cast<const T*>(lepe);
      T* y = static_cast<T*>(out);
      tiled_softmax_attention_kernel<<<
          dim3(static_cast<unsigned>((L + kTiledQueries - 1) / kTiledQueries),
               static_cast<unsigned>(p.heads), static_cast<unsigned>(p.n * splits)),
          kTiledQueries, 0, stream>>>(p, x, lp, angle, keys, values, y, splits, partial);
      if (splits > 1) {
        combine_runs_kernel<<<dim3(static_cast<unsigned>((tokens + kCombineWarps - 1) /
                                                         kCombineWarps),
                                   static_cast<unsigned>(p.heads)),
                              kCombineWarps * kWarp, 0, stream>>>(p, x, lp, partial, splits, y);
      }
      return;
    }
    softmax_attention_kernel<<<dim3(static_cast<unsigned>((tokens + kWarps - 1) / kWarps),
                                    static_cast<unsigned>(p.heads)),
                               kWarps * kWarp, 0, stream>>>(p, x, static_cast<const T*>(lepe),
                                                            angle, static_cast<T*>(out));
  });
}

}  // namespace ravlt::runtime::cuda
