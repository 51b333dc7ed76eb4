// Softmax attention on tensor cores (WMMA 16 x 16 x 16, float32
// accumulation) for 16-bit storage and head_dim a multiple of 16 up to 64
// (every published model's softmax stages: 64). Online softmax as the
// CUDA-core kernels (softmax_attention.cu), no L x L matrix.
//
// The rotated keys and the values are first written once, in the storage
// type, to scratch ([image][head][token][d]). Then a block of four warps
// takes 64 queries of one (image, head), a warp 16 of them, their rotated
// and scaled queries held as WMMA fragments. Per tile of 64 keys staged in
// shared memory: the warp's 16 x 64 scores on tensor cores, stored to
// shared memory; two lanes per query row update its running max and sum
// and write the tile's weights (rounded to the storage type, and summed as
// rounded, so that the normalisation matches what is multiplied); the
// 16 x d product of weights and values on tensor cores, added by those
// lanes to the row's float32 accumulator in registers (rescaled first).
//
// Rounding, beyond the storage's own: the rotated query and key, and the
// weights, to the storage type (what PyTorch's half-precision attention
// rounds as well).
#include <mma.h>

#include <cfloat>

#include "runtime/cuda/device_math.cuh"
#include "runtime/cuda/rotate_keys.cuh"

namespace ravlt::runtime::cuda {
namespace {

using namespace nvcuda;

constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = kMmaWarps * kWarp;
constexpr int kRows = 16;                    // queries per warp
constexpr int kQueries = kRows * kMmaWarps;  // per block
constexpr int kKeys = 64;                    // keys per tile
constexpr int kMaxDim = 64;
constexpr int kLd = kMaxDim + 8;     // 16-bit elements per staged row
constexpr int kScoreLd = kKeys + 4;  // floats per score row
constexpr int kPerLane = kKeys / 2;  // columns a lane owns of its row
// Below this many blocks (a batch of one: RAVLT-S's stage 3 makes 20) the
// CUDA-core kernel, which splits the keys to fill the GPU, is used.
constexpr int64_t kMmaMinBlocks = 256;

template <typename T>
__device__ __forceinline__ T to_storage(float v);
template <>
__device__ __forceinline__ __half to_storage<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 to_storage<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Grid (query blocks, heads, images), kMmaThreads threads.
template <typename T>
__global__ void __launch_bounds__(kMmaThreads)
    mma_softmax_attention_kernel(AttentionParams p, const T* __restrict__ qkvo,
                                 const T* __restrict__ lepe, const float* __restrict__ angle,
                                 const T* __restrict__ keys, const T* __restrict__ values,
                                 T* __restrict__ out) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  __shared__ __align__(32) T key_tile[kKeys * kLd];
  __shared__ __align__(32) T value_tile[kKeys * kLd];
  __shared__ __align__(32) float score_rows[kMmaWarps][kRows * kScoreLd];
  __shared__ __align__(32) T weight_rows[kMmaWarps][kRows * kLd];
  using AFragment = wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
  using Accumulator = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int d = p.head_dim, head = blockIdx.y, steps = d / 16;
  const int64_t b = blockIdx.z, L = static_cast<int64_t>(p.h) * p.w;
  const int64_t c = static_cast<int64_t>(p.heads) * d;
  const int64_t first_query = static_cast<int64_t>(blockIdx.x) * kQueries + warp * kRows;
  float* scores = score_rows[warp];
  T* weights = weight_rows[warp];

  // This warp's queries, rotated and scaled by 1 / sqrt(d), staged in its
  // weight rows (zeros past the last token) and loaded as fragments.
  const float inv_root_d = rsqrtf(static_cast<float>(d));
  for (int e = lane; e < kRows * kMaxDim; e += kWarp) {
    const int r = e / kMaxDim, t = e % kMaxDim;
    const int64_t i = first_query + r;
    float v = 0.0f;
    if (i < L && t < d) {
      const T* q = qkvo + (b * L + i) * 4 * c + static_cast<int64_t>(head) * d;
      const int y = static_cast<int>(i / p.w), x = static_cast<int>(i % p.w);
      v = rope(load(q, t), load(q, t ^ 1), t, rope_theta(angle, t, d, y, x)) * inv_root_d;
    }
    weights[r * kLd + t] = to_storage<T>(v);
  }
  __syncwarp();
  AFragment query[kMaxDim / 16];
#pragma unroll
  for (int k = 0; k < kMaxDim / 16; ++k) {
    if (k < steps) wmma::load_matrix_sync(query[k], weights + k * 16, kLd);
  }

  // Lane `lane` owns row lane / 2 and its columns 2 s + lane % 2.
  const int row = lane / 2, half = lane % 2;
  float running_max = -FLT_MAX, running_sum = 0.0f;
  float acc[kPerLane];
#pragma unroll
  for (int s = 0; s < kPerLane; ++s) acc[s] = 0.0f;

  const int64_t head_base = (b * p.heads + head) * L * d;
  constexpr int kVectors = kMaxDim / 8;  // 16-byte units per staged row
  for (int64_t j0 = 0; j0 < L; j0 += kKeys) {
    const int keys_here = static_cast<int>(L - j0 < kKeys ? L - j0 : kKeys);
    __syncthreads();  // every warp is done with the previous tile
    for (int e = threadIdx.x; e < kKeys * kVectors; e += kMmaThreads) {
      const int r = e / kVectors, v = e % kVectors;
      uint4 k4 = make_uint4(0, 0, 0, 0), v4 = k4;
      if (r < keys_here && v * 8 < d) {
        const int64_t at = head_base + (j0 + r) * d + v * 8;
        k4 = *reinterpret_cast<const uint4*>(keys + at);
        v4 = *reinterpret_cast<const uint4*>(values + at);
      }
      *reinterpret_cast<uint4*>(key_tile + r * kLd + v * 8) = k4;
      *reinterpret_cast<uint4*>(value_tile + r * kLd + v * 8) = v4;
    }
    __syncthreads();

    // Scores: (16 x d) x (d x 64).
#pragma unroll
    for (int n = 0; n < kKeys / 16; ++n) {
      Accumulator s;
      wmma::fill_fragment(s, 0.0f);
#pragma unroll
      for (int k = 0; k < kMaxDim / 16; ++k) {
        if (k < steps) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> key;
          wmma::load_matrix_sync(key, key_tile + n * 16 * kLd + k * 16, kLd);
          wmma::mma_sync(s, query[k], key, s);
        }
      }
      wmma::store_matrix_sync(scores + n * 16, s, kScoreLd, wmma::mem_row_major);
    }
    __syncwarp();

    // The online softmax of this row's part of the tile.
    const float* score_row = scores + row * kScoreLd;
    float tile_max = -FLT_MAX;
#pragma unroll
    for (int s = 0; s < kPerLane; ++s) {
      const int col = 2 * s + half;
      if (col < keys_here) tile_max = fmaxf(tile_max, score_row[col]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    const float new_max = fmaxf(running_max, tile_max);
    const float rescale = expf(running_max - new_max);
    float tile_sum = 0.0f;
    T* weight_row = weights + row * kLd;
#pragma unroll
    for (int s = 0; s < kPerLane; ++s) {
      const int col = 2 * s + half;
      const T w = to_storage<T>(col < keys_here ? expf(score_row[col] - new_max) : 0.0f);
      tile_sum += load(&w, 0);
      weight_row[col] = w;
    }
    tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
    running_sum = running_sum * rescale + tile_sum;
    running_max = new_max;
    __syncwarp();

    // Weights times values: (16 x 64) x (64 x d), into the score rows.
    AFragment weight[kKeys / 16];
#pragma unroll
    for (int k = 0; k < kKeys / 16; ++k) wmma::load_matrix_sync(weight[k], weights + k * 16, kLd);
#pragma unroll
    for (int n = 0; n < kMaxDim / 16; ++n) {
      if (n < steps) {
        Accumulator o;
        wmma::fill_fragment(o, 0.0f);
#pragma unroll
        for (int k = 0; k < kKeys / 16; ++k) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> value;
          wmma::load_matrix_sync(value, value_tile + k * 16 * kLd + n * 16, kLd);
          wmma::mma_sync(o, weight[k], value, o);
        }
        wmma::store_matrix_sync(scores + n * 16, o, kScoreLd, wmma::mem_row_major);
      }
    }
    __syncwarp();
#pragma unroll
    for (int s = 0; s < kPerLane; ++s) {
      const int col = 2 * s + half;
      acc[s] = acc[s] * rescale + (col < d ? score_row[col] : 0.0f);
    }
    // The next tile's first write to these rows follows its __syncthreads.
  }

  const int64_t i = first_query + row;
  if (i >= L) return;
  const int64_t token = b * L + i;
  const int64_t at = token * c + static_cast<int64_t>(head) * d;
  const T* o = qkvo + token * 4 * c + 3 * c + static_cast<int64_t>(head) * d;
  const float inv_sum = 1.0f / running_sum;
#pragma unroll
  for (int s = 0; s < kPerLane; ++s) {
    const int col = 2 * s + half;
    if (col < d) store(out, at + col, (acc[s] * inv_sum + load(lepe, at + col)) * load(o, col));
  }
#else
  __trap();  // the backend refuses GPUs below sm_80 (cuda_backend.cpp)
#endif
}

}  // namespace

bool softmax_mma_handles(DType storage, const AttentionParams& p) {
  const int64_t L = static_cast<int64_t>(p.h) * p.w;
  const int64_t blocks = (L + kQueries - 1) / kQueries * p.heads * p.n;
  return storage != DType::kFloat32 && p.head_dim % 16 == 0 && p.head_dim <= kMaxDim &&
         blocks >= kMmaMinBlocks && p.n <= 65535 && p.heads <= 65535;
}

size_t softmax_mma_scratch_bytes(const AttentionParams& p) {
  return 2 * static_cast<size_t>(p.n) * p.h * p.w * p.heads * p.head_dim * sizeof(uint16_t);
}

void launch_softmax_attention_mma(DType storage, const AttentionParams& p, const void* qkvo,
                                  const void* lepe, const float* angle, void* out, void* scratch,
                                  cudaStream_t stream) {
  const int64_t tokens = static_cast<int64_t>(p.n) * p.h * p.w;
  const int64_t L = static_cast<int64_t>(p.h) * p.w;
  auto go = [&](auto type) {
    using T = decltype(type);
    const T* x = static_cast<const T*>(qkvo);
    T* keys = static_cast<T*>(scratch);
    T* values = keys + tokens * p.heads * p.head_dim;
    rotate_keys_kernel<<<grid_for(tokens * p.heads * p.head_dim), 256, 0, stream>>>(p, x, angle,
                                                                                    keys, values);
    mma_softmax_attention_kernel<<<dim3(static_cast<unsigned>((L + kQueries - 1) / kQueries),
                                        static_cast<unsigned>(p.heads), static_cast<unsigned>(p.n)),
                                   kMmaThreads, 0, stream>>>(
        p, x, static_cast<const T*>(lepe), angle, keys, values, static_cast<T*>(out));
  };
  if (storage == DType::kFloat16) {
    go(__half{});
  } else {
    go(__nv_bfloat16{});
  }
}

}  // namespace ravlt::runtime::cuda
