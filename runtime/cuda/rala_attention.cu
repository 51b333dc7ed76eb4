// RALA (spec section 3.3) in three passes over the tokens of each image and
// head:
//   1. weights: qm = mean_j phi(q_j); s_j = qm . phi(k_j) / sqrt(d);
//      w_j = softmax(s)_j * L (the rank-augmenting reweighting of the keys);
//   2. state:   k'_j = phi(k_j) w_j; kbar = mean_j k'_j;
//               KV = sum_j rope(k'_j)^T v_j / L  (d x d, tiles in shared memory);
//   3. output:  z_i = 1 / (phi(q_i) . kbar + 1e-6);
//               out_i = (rope(phi(q_i)) KV z_i + lepe_i) * o_i.
// phi(x) = elu(x) + 1. Scratch (floats): w [BH][L], kbar [BH][d],
// KV [BH][d][d], BH = images x heads.
#include <algorithm>
#include <cfloat>

#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

struct Layout {
  int n, h, w, heads, d;
  int64_t L, c;  // tokens per image, channels per q/k/v/o part
  __host__ __device__ int64_t bh() const { return static_cast<int64_t>(n) * heads; }
};

Layout layout_of(const AttentionParams& p) {
  Layout l{p.n,
           p.h,
           p.w,
           p.heads,
           p.head_dim,
           static_cast<int64_t>(p.h) * p.w,
           static_cast<int64_t>(p.heads) * p.head_dim};
  return l;
}

constexpr int kWeightThreads = 256;

// Pass 1: one block per (image, head).
template <typename T>
__global__ void rala_weights_kernel(Layout l, const T* __restrict__ qkvo,
                                    float* __restrict__ weights) {
  extern __shared__ float shared[];
  float* qm = shared;             // [d]
  float* partial = shared + l.d;  // [max(threads, d)]: channel sums' parts, then per warp
  const int64_t bh = blockIdx.x;
  const int64_t b = bh / l.heads;
  const int head = static_cast<int>(bh % l.heads);
  const int64_t row = 4 * l.c;
  const T* base = qkvo + b * l.L * row + static_cast<int64_t>(head) * l.d;
  float* wts = weights + bh * l.L;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int warps = blockDim.x / kWarp;

  // qm: each channel's tokens summed in `groups` interleaved parts, by as
  // many threads (every thread busy, loads of neighbouring channels side by
  // side), then the parts added.
  const int groups = static_cast<int>(blockDim.x) >= l.d ? static_cast<int>(blockDim.x) / l.d : 1;
  for (int e = threadIdx.x; e < groups * l.d; e += blockDim.x) {
    const int t = e % l.d, g = e / l.d;
    float sum = 0.0f;
#pragma unroll 4
    for (int64_t j = g; j < l.L; j += groups) sum += elu_plus_one(load(base, j * row + t));
    partial[e] = sum;
  }
  __syncthreads();
  for (int t = threadIdx.x; t < l.d; t += blockDim.x) {
    float sum = 0.0f;
    for (int g = 0; g < groups; ++g) sum += partial[g * l.d + t];
    qm[t] = sum / static_cast<float>(l.L);
  }
  __syncthreads();

  const float root_d = sqrtf(static_cast<float>(l.d));
  float top = -FLT_MAX;
  for (int64_t j = warp; j < l.L; j += warps) {
    const T* k = base + j * row + l.c;
    float s = 0.0f;
    for (int t = lane; t < l.d; t += kWarp) s += qm[t] * elu_plus_one(load(k, t));
    s = warp_sum(s) / root_d;
    if (lane == 0) wts[j] = s;
    top = fmaxf(top, s);
  }
  if (lane == 0) partial[warp] = top;
  __syncthreads();
  float max_s = partial[0];
  for (int i = 1; i < warps; ++i) max_s = fmaxf(max_s, partial[i]);
  __syncthreads();  // everyone has read partial[] before it is reused

  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < l.L; j += blockDim.x) {
    const float e = expf(wts[j] - max_s);
    wts[j] = e;
    sum += e;
  }
  sum = warp_sum(sum);
  if (lane == 0) partial[warp] = sum;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < warps; ++i) total += partial[i];
  const float scale = static_cast<float>(l.L) / total;
  for (int64_t j = threadIdx.x; j < l.L; j += blockDim.x) wts[j] *= scale;
}

constexpr int kTile = 16;    // KV tile: 16 x 16 channels per block
constexpr int kTokens = 32;  // tokens staged in shared memory at a time

// Pass 2: grid (BH, row tiles, column tiles), 16 x 16 threads.
template <typename T>
__global__ void rala_state_kernel(Layout l, const T* __restrict__ qkvo,
                                  const float* __restrict__ angle,
                                  const float* __restrict__ weights, float* __restrict__ kbar,
                                  float* __restrict__ kv) {
  __shared__ float rope_k[kTokens][kTile];
  __shared__ float plain_k[kTokens][kTile];
  __shared__ float vals[kTokens][kTile + 1];
  const int64_t bh = blockIdx.x;
  const int64_t b = bh / l.heads;
  const int head = static_cast<int>(bh % l.heads);
  const int64_t row = 4 * l.c;
  const T* base = qkvo + b * l.L * row + static_cast<int64_t>(head) * l.d;
  const float* wts = weights + bh * l.L;
  const int t1_0 = blockIdx.y * kTile, t2_0 = blockIdx.z * kTile;
  const int ty = threadIdx.y, tx = threadIdx.x;
  const int tid = ty * kTile + tx;
  const bool sums_kbar = blockIdx.z == 0 && tx == 0;

  float acc = 0.0f, kacc = 0.0f;
  for (int64_t j0 = 0; j0 < l.L; j0 += kTokens) {
    for (int e = tid; e < kTokens * kTile; e += kTile * kTile) {
      const int jj = e / kTile, ch = e % kTile;
      const int64_t j = j0 + jj;
      float rk = 0.0f, pk = 0.0f, vv = 0.0f;
      if (j < l.L) {
        const T* k = base + j * row + l.c;
        const int t = t1_0 + ch;
        if (t < l.d) {
          const float wj = wts[j];
          pk = elu_plus_one(load(k, t)) * wj;
          const float partner = elu_plus_one(load(k, t ^ 1)) * wj;
          const int y = static_cast<int>(j / l.w), x = static_cast<int>(j % l.w);
          rk = rope(pk, partner, t, rope_theta(angle, t, l.d, y, x));
        }
        const int t2 = t2_0 + ch;
        if (t2 < l.d) vv = load(base, j * row + 2 * l.c + t2);
      }
      rope_k[jj][ch] = rk;
      plain_k[jj][ch] = pk;
      vals[jj][ch] = vv;
    }
    __syncthreads();
#pragma unroll 8
    for (int jj = 0; jj < kTokens; ++jj) acc += rope_k[jj][ty] * vals[jj][tx];
    if (sums_kbar) {
      for (int jj = 0; jj < kTokens; ++jj) kacc += plain_k[jj][ty];
    }
    __syncthreads();
  }
  const int t1 = t1_0 + ty, t2 = t2_0 + tx;
  const float inv_L = 1.0f / static_cast<float>(l.L);
  if (t1 < l.d && t2 < l.d) kv[(bh * l.d + t1) * l.d + t2] = acc * inv_L;
  if (sums_kbar && t1 < l.d) kbar[bh * l.d + t1] = kacc * inv_L;
}

constexpr int kOutWarps = 4;

// Pass 3: one warp per token, grid (tokens / 4, heads).
template <typename T>
__global__ void rala_output_kernel(Layout l, const T* __restrict__ qkvo, const T* __restrict__ lepe,
                                   const float* __restrict__ angle, const float* __restrict__ kbar,
                                   const float* __restrict__ kv, T* __restrict__ out) {
  extern __shared__ float shared[];  // [warps][d]: rope(phi(q)) of each warp's token
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t token = blockIdx.x * static_cast<int64_t>(kOutWarps) + warp;  // over n * L
  if (token >= l.n * l.L) return;
  const int head = blockIdx.y;
  const int64_t b = token / l.L, j = token % l.L;
  const int64_t bh = b * l.heads + head;
  const T* q = qkvo + token * 4 * l.c + static_cast<int64_t>(head) * l.d;
  float* rq = shared + warp * l.d;
  const int y = static_cast<int>(j / l.w), x = static_cast<int>(j % l.w);
  float zs = 0.0f;
  for (int t = lane; t < l.d; t += kWarp) {
    const float qv = elu_plus_one(load(q, t));
    zs += qv * kbar[bh * l.d + t];
    rq[t] = rope(qv, elu_plus_one(load(q, t ^ 1)), t, rope_theta(angle, t, l.d, y, x));
  }
  const float z = 1.0f / (warp_sum(zs) + 1e-6f);
  __syncwarp();
  const float* state = kv + bh * l.d * l.d;
  const int64_t at = token * l.c + static_cast<int64_t>(head) * l.d;
  const T* o = q + 3 * l.c;
  for (int t2 = lane; t2 < l.d; t2 += kWarp) {
    float s = 0.0f;
    for (int t1 = 0; t1 < l.d; ++t1) s += rq[t1] * state[t1 * l.d + t2];
    store(out, at + t2, (s * z + load(lepe, at + t2)) * load(o, t2));
  }
}

}  // namespace

size_t rala_scratch_bytes(const AttentionParams& p) {
  const Layout l = layout_of(p);
  return static_cast<size_t>(l.bh() * (l.L + l.d + static_cast<int64_t>(l.d) * l.d)) *
         sizeof(float);
}

void launch_rala_attention(DType storage, const AttentionParams& p, const void* qkvo,
                           const void* lepe, const float* angle, void* out, void* scratch,
                           cudaStream_t stream) {
  const Layout l = layout_of(p);
  float* weights = static_cast<float*>(scratch);
  float* kbar = weights + l.bh() * l.L;
  float* kv = kbar + l.bh() * l.d;
  const unsigned tiles = static_cast<unsigned>((l.d + kTile - 1) / kTile);
  const int64_t tokens = l.n * l.L;
  with_storage(storage, [&](auto type) {
    using T = decltype(type);
    const T* x = static_cast<const T*>(qkvo);
    rala_weights_kernel<<<static_cast<unsigned>(l.bh()), kWeightThreads,
                          (l.d + std::max(kWeightThreads, l.d)) * sizeof(float), stream>>>(l, x,
                                                                                           weights);
    rala_state_kernel<<<dim3(static_cast<unsigned>(l.bh()), tiles, tiles), dim3(kTile, kTile), 0,
                        stream>>>(l, x, angle, weights, kbar, kv);
    rala_output_kernel<<<dim3(static_cast<unsigned>((tokens + kOutWarps - 1) / kOutWarps),
                              static_cast<unsigned>(l.heads)),
                         kOutWarps * kWarp, kOutWarps * l.d * sizeof(float), stream>>>(
        l, x, static_cast<const T*>(lepe), angle, kbar, kv, static_cast<T*>(out));
  });
}

}  // namespace ravlt::runtime::cuda
