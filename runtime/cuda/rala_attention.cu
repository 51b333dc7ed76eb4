// RALA (spec section 3.3) over chunks of each image's tokens, so that one
// image (batch 1) still fills the GPU: for every (image, head) `bh` and
// chunk `c` of its tokens, a block of
//   1. query sums: sum of phi(q_j) over the chunk;
//   2. scores:     qm = mean_j phi(q_j) (every chunk's sums added, in chunk
//                  order); s_j = qm . phi(k_j) / sqrt(d) for the chunk, its
//                  maximum and its sum of exp(s_j - maximum);
//   3. state:      w_j = softmax(s)_j * L (the rank-augmenting reweighting
//                  of the keys, from every chunk's maximum and sum);
//                  k'_j = phi(k_j) w_j; the chunk's sum of k'_j and of
//                  rope(k'_j)^T v_j (d x d, register tiles of 4 x 4);
// then
//   4. reduce:     kbar and KV = the chunks' sums, in chunk order, / L;
//   5. output:     z_i = 1 / (phi(q_i) . kbar + 1e-6);
//                  out_i = (rope(phi(q_i)) KV z_i + lepe_i) * o_i.
// phi(x) = elu(x) + 1. Every sum has a fixed order: results do not depend
// on scheduling (a CUDA graph's replays are bit-identical). Scratch (floats,
// BH = images x heads, C chunks): the query sums [BH][C][d], the scores
// [BH][L], each chunk's maximum and sum [BH][C] each, the chunks' states
// [BH][C][d * d + d] and the state [BH][d * d + d] (KV, then kbar).
#include <algorithm>
#include <cfloat>

#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

constexpr int kThreads = 256;  // threads of the chunk kernels
// Chunks x (image, head) pairs aimed at: enough blocks of 256 threads for
// an H200's 132 SMs several times over, as passes 1-3 walk their chunk's
// tokens one after another (RAVLT-S at batch 256 made 2 chunks of 1,568
// tokens per image at 512).
constexpr int kTargetBlocks = 2048;
constexpr int kMinChunk = 64;  // tokens

struct Layout {
  int n, h, w, heads, d;
  int64_t L, c;  // tokens per image, channels per q/k/v/o part
  int chunks;    // per (image, head)
  int chunk;     // tokens per chunk (a multiple of 32; the last may be short)
  __host__ __device__ int64_t bh() const { return static_cast<int64_t>(n) * heads; }
  __host__ __device__ int64_t state_size() const { return static_cast<int64_t>(d) * d + d; }
};

Layout layout_of(const AttentionParams& p) {
  Layout l{p.n,
           p.h,
           p.w,
           p.heads,
           p.head_dim,
           static_cast<int64_t>(p.h) * p.w,
           static_cast<int64_t>(p.heads) * p.head_dim,
           1,
           0};
  const int64_t wanted = std::max<int64_t>(1, (kTargetBlocks + l.bh() - 1) / l.bh());
  const int64_t most = std::max<int64_t>(1, (l.L + kMinChunk - 1) / kMinChunk);
  const int64_t chunks = std::min(wanted, most);
  const int64_t chunk = ((l.L + chunks - 1) / chunks + 31) / 32 * 32;
  l.chunk = static_cast<int>(chunk);
  l.chunks = static_cast<int>((l.L + chunk - 1) / chunk);
  return l;
}

struct Scratch {
  float *qsum, *scores, *chunk_max, *chunk_sum, *chunk_state, *state;
};

Scratch scratch_of(const Layout& l, void* base) {
  const int64_t bhc = l.bh() * l.chunks;
  Scratch s{};
  s.qsum = static_cast<float*>(base);
  s.scores = s.qsum + bhc * l.d;
  s.chunk_max = s.scores + l.bh() * l.L;
  s.chunk_sum = s.chunk_max + bhc;
  s.chunk_state = s.chunk_sum + bhc;
  s.state = s.chunk_state + bhc * l.state_size();
  return s;
}

int64_t scratch_floats(const Layout& l) {
  const int64_t bhc = l.bh() * l.chunks;
  return bhc * l.d + l.bh() * l.L + 2 * bhc + bhc * l.state_size() + l.bh() * l.state_size();
}

// The block's (image, head) and chunk, from blockIdx.x = bh * chunks + c.
struct ChunkOf {
  int64_t bh, b;
  int head, c;
  int64_t j0, j1;  // the chunk's tokens [j0, j1)
  __device__ ChunkOf(const Layout& l) {
    bh = blockIdx.x / l.chunks;
    c = static_cast<int>(blockIdx.x - bh * l.chunks);
    b = bh / l.heads;
    head = static_cast<int>(bh - b * l.heads);
    j0 = static_cast<int64_t>(c) * l.chunk;
    j1 = j0 + l.chunk < l.L ? j0 + l.chunk : l.L;
  }
};

// The sum and maximum of a block's values (every thread gets them);
// `red` holds a float per warp.
__device__ float block_sum(float v, float* red) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  v = warp_sum(v);
  __syncthreads();  // red[] is free
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < static_cast<int>(blockDim.x / kWarp); ++i) total += red[i];
  return total;
}

__device__ float block_max(float v, float* red) {
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float top = red[0];
  for (int i = 1; i < static_cast<int>(blockDim.x / kWarp); ++i) top = fmaxf(top, red[i]);
  return top;
}

// Pass 1: grid (BH x chunks); each channel's tokens summed in `groups`
// interleaved parts, by as many threads, then the parts added.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    rala_query_sum_kernel(Layout l, const T* __restrict__ qkvo, float* __restrict__ qsum) {
  extern __shared__ float partial[];  // [max(threads, d)]
  const ChunkOf k(l);
  const int64_t row = 4 * l.c;
  const T* q = qkvo + k.b * l.L * row + static_cast<int64_t>(k.head) * l.d;
  const int groups = kThreads >= l.d ? kThreads / l.d : 1;
  for (int e = threadIdx.x; e < groups * l.d; e += kThreads) {
    const int t = e % l.d, g = e / l.d;
    float sum = 0.0f;
#pragma unroll 4
    for (int64_t j = k.j0 + g; j < k.j1; j += groups) sum += elu_plus_one(load(q, j * row + t));
    partial[e] = sum;
  }
  __syncthreads();
  for (int t = threadIdx.x; t < l.d; t += kThreads) {
    float sum = 0.0f;
    for (int g = 0; g < groups; ++g) sum += partial[g * l.d + t];
    qsum[(k.bh * l.chunks + k.c) * l.d + t] = sum;
  }
}

// Pass 2: grid (BH x chunks); a warp per token for the scores.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    rala_scores_kernel(Layout l, const T* __restrict__ qkvo, const float* __restrict__ qsum,
                       float* __restrict__ scores, float* __restrict__ chunk_max,
                       float* __restrict__ chunk_sum) {
  extern __shared__ float shared[];
  float* qm = shared;         // [d]
  float* red = shared + l.d;  // [warps]
  const ChunkOf k(l);
  const float* sums = qsum + k.bh * l.chunks * l.d;
  for (int t = threadIdx.x; t < l.d; t += kThreads) {
    float sum = 0.0f;
    for (int c = 0; c < l.chunks; ++c) sum += sums[c * l.d + t];
    qm[t] = sum / static_cast<float>(l.L);
  }
  __syncthreads();

  const int64_t row = 4 * l.c;
  const T* keys = qkvo + k.b * l.L * row + l.c + static_cast<int64_t>(k.head) * l.d;
  float* s = scores + k.bh * l.L;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const float root_d = sqrtf(static_cast<float>(l.d));
  float top = -FLT_MAX;
  for (int64_t j = k.j0 + warp; j < k.j1; j += kThreads / kWarp) {
    float dot = 0.0f;
    for (int t = lane; t < l.d; t += kWarp) dot += qm[t] * elu_plus_one(load(keys, j * row + t));
    dot = warp_sum(dot) / root_d;
    if (lane == 0) s[j] = dot;
    top = fmaxf(top, dot);
  }
  top = block_max(top, red);  // its barriers make every s[j] visible
  float sum = 0.0f;
  for (int64_t j = k.j0 + threadIdx.x; j < k.j1; j += kThreads) sum += expf(s[j] - top);
  sum = block_sum(sum, red);
  if (threadIdx.x == 0) {
    chunk_max[k.bh * l.chunks + k.c] = top;
    chunk_sum[k.bh * l.chunks + k.c] = sum;
  }
}

constexpr int kSide = 64;    // a block's part of KV: kSide x kSide channels
constexpr int kSub = 4;      // a thread's part: kSub x kSub
constexpr int kTokens = 32;  // tokens staged in shared memory at a time

// Pass 3: grid (BH x chunks, KV parts); 16 x 16 threads, each with a 4 x 4
// register tile of KV (rows ty + 16 a, columns tx + 16 b).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    rala_chunk_state_kernel(Layout l, const T* __restrict__ qkvo, const float* __restrict__ angle,
                            const float* __restrict__ scores, const float* __restrict__ chunk_max,
                            const float* __restrict__ chunk_sum, float* __restrict__ chunk_state) {
  __shared__ float rope_k[kTokens][kSide];
  __shared__ float plain_k[kTokens][kSide];
  __shared__ float vals[kTokens][kSide];
  __shared__ float red[kThreads / kWarp];
  const ChunkOf k(l);
  const int parts = (l.d + kSide - 1) / kSide;
  const int t1_0 = static_cast<int>(blockIdx.y / parts) * kSide;
  const int t2_0 = static_cast<int>(blockIdx.y % parts) * kSide;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;

  // The softmax over all L scores, from the chunks' maxima and sums.
  const float* maxima = chunk_max + k.bh * l.chunks;
  const float* sums = chunk_sum + k.bh * l.chunks;
  float top = -FLT_MAX;
  for (int c = tid; c < l.chunks; c += kThreads) top = fmaxf(top, maxima[c]);
  top = block_max(top, red);
  float total = 0.0f;
  for (int c = tid; c < l.chunks; c += kThreads) total += sums[c] * expf(maxima[c] - top);
  total = block_sum(total, red);
  const float scale = static_cast<float>(l.L) / total;

  const int64_t row = 4 * l.c;
  const T* base = qkvo + k.b * l.L * row + static_cast<int64_t>(k.head) * l.d;
  const float* s = scores + k.bh * l.L;
  const bool sums_kbar = t2_0 == 0 && tx == 0;
  float acc[kSub][kSub] = {};
  float kacc[kSub] = {};
  for (int64_t j0 = k.j0; j0 < k.j1; j0 += kTokens) {
    for (int e = tid; e < kTokens * kSide; e += kThreads) {
      const int jj = e / kSide, ch = e % kSide;
      const int64_t j = j0 + jj;
      float rk = 0.0f, pk = 0.0f, vv = 0.0f;
      if (j < k.j1) {
        const T* key = base + j * row + l.c;
        const int t = t1_0 + ch;
        if (t < l.d) {
          const float wj = expf(s[j] - top) * scale;
          pk = elu_plus_one(load(key, t)) * wj;
          const float partner = elu_plus_one(load(key, t ^ 1)) * wj;
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
#pragma unroll 4
    for (int jj = 0; jj < kTokens; ++jj) {
      float a[kSub], b[kSub];
#pragma unroll
      for (int i = 0; i < kSub; ++i) {
        a[i] = rope_k[jj][ty + 16 * i];
        b[i] = vals[jj][tx + 16 * i];
      }
#pragma unroll
      for (int i = 0; i < kSub; ++i) {
#pragma unroll
        for (int m = 0; m < kSub; ++m) acc[i][m] += a[i] * b[m];
      }
    }
    if (sums_kbar) {
      for (int jj = 0; jj < kTokens; ++jj) {
#pragma unroll
        for (int i = 0; i < kSub; ++i) kacc[i] += plain_k[jj][ty + 16 * i];
      }
    }
    __syncthreads();
  }
  float* out = chunk_state + (k.bh * l.chunks + k.c) * l.state_size();
#pragma unroll
  for (int i = 0; i < kSub; ++i) {
    const int t1 = t1_0 + ty + 16 * i;
    if (t1 >= l.d) continue;
#pragma unroll
    for (int m = 0; m < kSub; ++m) {
      const int t2 = t2_0 + tx + 16 * m;
      if (t2 < l.d) out[t1 * l.d + t2] = acc[i][m];
    }
    if (sums_kbar) out[static_cast<int64_t>(l.d) * l.d + t1] = kacc[i];
  }
}

// Pass 4: grid (BH, state blocks); the chunks' states added in chunk order.
__global__ void rala_reduce_kernel(Layout l, const float* __restrict__ chunk_state,
                                   float* __restrict__ state) {
  const int64_t size = l.state_size();
  const int64_t e = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= size) return;
  const int64_t bh = blockIdx.x;
  const float* parts = chunk_state + bh * l.chunks * size + e;
  float sum = 0.0f;
  for (int c = 0; c < l.chunks; ++c) sum += parts[c * size];
  state[bh * size + e] = sum / static_cast<float>(l.L);
}

constexpr int kOutTokens = 64;  // tokens per block of the output pass
constexpr int kOutQueries = 4;  // tokens a warp computes at once
constexpr int kOutCols = 2;     // output channels per lane: head_dim <= 64

size_t output_shared_bytes(const Layout& l) {
  const int64_t state = (l.state_size() + 3) / 4 * 4;  // the queries start float4-aligned
  return static_cast<size_t>(state + (kThreads / kWarp) * kOutQueries * l.d) * sizeof(float);
}

// Where the state and every warp's rotated queries fit in 48 KB and a lane
// covers its channels with kOutCols: head_dim <= 64 (RAVLT-T and S).
bool output_in_shared(const Layout& l) {
  return l.d <= kOutCols * kWarp && output_shared_bytes(l) <= 48 * 1024;
}

// Pass 5: grid (BH x token chunks of 64); the (image, head)'s state in
// shared memory; each warp takes 4 tokens at a time, their rotated queries
// interleaved ([d][4], one float4 a channel), each lane 2 output channels.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    rala_output_kernel(Layout l, int token_chunks, const T* __restrict__ qkvo,
                       const T* __restrict__ lepe, const float* __restrict__ angle,
                       const float* __restrict__ state, T* __restrict__ out) {
  extern __shared__ float4 shared4[];
  float* kv = reinterpret_cast<float*>(shared4);  // [d][d], then kbar [d]
  const int64_t size = l.state_size();
  float4* rq_all = shared4 + (size + 3) / 4;  // [warps][d]
  const int64_t bh = blockIdx.x / token_chunks;
  const int64_t chunk = blockIdx.x - bh * token_chunks;
  const int64_t b = bh / l.heads;
  const int head = static_cast<int>(bh - b * l.heads);
  const float* st = state + bh * size;
  for (int64_t e = threadIdx.x; e < size; e += kThreads) kv[e] = st[e];
  const float* kbar = kv + static_cast<int64_t>(l.d) * l.d;
  __syncthreads();

  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  float4* rq = rq_all + warp * l.d;
  const int64_t row = 4 * l.c;
  const int64_t jbeg = chunk * kOutTokens;
  const int64_t jend = jbeg + kOutTokens < l.L ? jbeg + kOutTokens : l.L;
  for (int64_t j0 = jbeg + warp * kOutQueries; j0 < jend; j0 += (kThreads / kWarp) * kOutQueries) {
    float z[kOutQueries];
#pragma unroll
    for (int i = 0; i < kOutQueries; ++i) {
      const int64_t j = j0 + i;
      float zs = 0.0f;
      for (int t = lane; t < l.d; t += kWarp) {
        float r = 0.0f;
        if (j < jend) {
          const T* q = qkvo + (b * l.L + j) * row + static_cast<int64_t>(head) * l.d;
          const float qv = elu_plus_one(load(q, t));
          zs += qv * kbar[t];
          const int y = static_cast<int>(j / l.w), x = static_cast<int>(j % l.w);
          r = rope(qv, elu_plus_one(load(q, t ^ 1)), t, rope_theta(angle, t, l.d, y, x));
        }
        reinterpret_cast<float*>(rq + t)[i] = r;
      }
      z[i] = 1.0f / (warp_sum(zs) + 1e-6f);
    }
    __syncwarp();
    float acc[kOutQueries][kOutCols] = {};
    for (int t1 = 0; t1 < l.d; ++t1) {
      const float4 r = rq[t1];
#pragma unroll
      for (int m = 0; m < kOutCols; ++m) {
        const int t2 = lane + kWarp * m;
        const float w = t2 < l.d ? kv[t1 * l.d + t2] : 0.0f;
        acc[0][m] += r.x * w;
        acc[1][m] += r.y * w;
        acc[2][m] += r.z * w;
        acc[3][m] += r.w * w;
      }
    }
#pragma unroll
    for (int i = 0; i < kOutQueries; ++i) {
      const int64_t j = j0 + i;
      if (j >= jend) break;
      const int64_t at = (b * l.L + j) * l.c + static_cast<int64_t>(head) * l.d;
      const T* o = qkvo + (b * l.L + j) * row + 3 * l.c + static_cast<int64_t>(head) * l.d;
#pragma unroll
      for (int m = 0; m < kOutCols; ++m) {
        const int t2 = lane + kWarp * m;
        if (t2 < l.d) store(out, at + t2, (acc[i][m] * z[i] + load(lepe, at + t2)) * load(o, t2));
      }
    }
    __syncwarp();  // rq is rewritten next
  }
}

constexpr int kOutWarps = 4;

// Pass 5 where the state does not fit (head_dim > 64): one warp per token,
// grid (tokens / 4, heads), the state read from global memory.
template <typename T>
__global__ void rala_output_global_kernel(Layout l, const T* __restrict__ qkvo,
                                          const T* __restrict__ lepe,
                                          const float* __restrict__ angle,
                                          const float* __restrict__ state, T* __restrict__ out) {
  extern __shared__ float shared[];  // [warps][d]: rope(phi(q)) of each warp's token
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t token = blockIdx.x * static_cast<int64_t>(kOutWarps) + warp;  // over n * L
  if (token >= l.n * l.L) return;
  const int head = blockIdx.y;
  const int64_t b = token / l.L, j = token % l.L;
  const int64_t bh = b * l.heads + head;
  const float* kv = state + bh * l.state_size();
  const float* kbar = kv + static_cast<int64_t>(l.d) * l.d;
  const T* q = qkvo + token * 4 * l.c + static_cast<int64_t>(head) * l.d;
  float* rq = shared + warp * l.d;
  const int y = static_cast<int>(j / l.w), x = static_cast<int>(j % l.w);
  float zs = 0.0f;
  for (int t = lane; t < l.d; t += kWarp) {
    const float qv = elu_plus_one(load(q, t));
    zs += qv * kbar[t];
    rq[t] = rope(qv, elu_plus_one(load(q, t ^ 1)), t, rope_theta(angle, t, l.d, y, x));
  }
  const float z = 1.0f / (warp_sum(zs) + 1e-6f);
  __syncwarp();
  const int64_t at = token * l.c + static_cast<int64_t>(head) * l.d;
  const T* o = q + 3 * l.c;
  for (int t2 = lane; t2 < l.d; t2 += kWarp) {
    float s = 0.0f;
    for (int t1 = 0; t1 < l.d; ++t1) s += rq[t1] * kv[t1 * l.d + t2];
    store(out, at + t2, (s * z + load(lepe, at + t2)) * load(o, t2));
  }
}

}  // namespace

size_t rala_scratch_bytes(const AttentionParams& p) {
  return static_cast<size_t>(scratch_floats(layout_of(p))) * sizeof(float);
}

void launch_rala_attention(DType storage, const AttentionParams& p, const void* qkvo,
                           const void* lepe, const float* angle, void* out, void* scratch,
                           cudaStream_t stream) {
  const Layout l = layout_of(p);
  const Scratch s = scratch_of(l, scratch);
  const unsigned chunk_blocks = static_cast<unsigned>(l.bh() * l.chunks);
  const int parts = (l.d + kSide - 1) / kSide;
  const unsigned state_blocks = static_cast<unsigned>((l.state_size() + kThreads - 1) / kThreads);
  with_storage(storage, [&](auto type) {
    using T = decltype(type);
    const T* x = static_cast<const T*>(qkvo);
    rala_query_sum_kernel<<<chunk_blocks, kThreads, std::max(kThreads, l.d) * sizeof(float),
                            stream>>>(l, x, s.qsum);
    rala_scores_kernel<<<chunk_blocks, kThreads, (l.d + kThreads / kWarp) * sizeof(float),
                         stream>>>(l, x, s.qsum, s.scores, s.chunk_max, s.chunk_sum);
    rala_chunk_state_kernel<<<dim3(chunk_blocks, static_cast<unsigned>(parts * parts)), kThreads, 0,
                              stream>>>(l, x, angle, s.scores, s.chunk_max, s.chunk_sum,
                                        s.chunk_state);
    rala_reduce_kernel<<<dim3(static_cast<unsigned>(l.bh()), state_blocks), kThreads, 0, stream>>>(
        l, s.chunk_state, s.state);
    const T* lp = static_cast<const T*>(lepe);
    T* y = static_cast<T*>(out);
    if (output_in_shared(l)) {
      const int token_chunks = static_cast<int>((l.L + kOutTokens - 1) / kOutTokens);
      rala_output_kernel<<<static_cast<unsigned>(l.bh() * token_chunks), kThreads,
                           output_shared_bytes(l), stream>>>(l, token_chunks, x, lp, angle, s.state,
                                                             y);
    } else {
      const int64_t tokens = l.n * l.L;
      rala_output_global_kernel<<<dim3(static_cast<unsigned>((tokens + kOutWarps - 1) / kOutWarps),
                                       static_cast<unsigned>(l.heads)),
                                  kOutWarps * kWarp, kOutWarps * l.d * sizeof(float), stream>>>(
          l, x, lp, angle, s.state, y);
    }
  });
}

}  // namespace ravlt::runtime::cuda
