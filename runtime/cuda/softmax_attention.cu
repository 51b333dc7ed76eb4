// Softmax attention with RoPE for stages 3-4: one warp per query, keys
// streamed with an online softmax (running max and sum), so no L x L matrix
// exists. Each lane holds the query and the output accumulator for channels
// lane, lane + 32, ... (head_dim <= 512: 16 per lane, in registers).
#include <cfloat>

#include "runtime/cuda/device_math.cuh"

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

}  // namespace

void launch_softmax_attention(DType storage, const AttentionParams& p, const void* qkvo,
                              const void* lepe, const float* angle, void* out,
                              cudaStream_t stream) {
  const int64_t tokens = static_cast<int64_t>(p.n) * p.h * p.w;
  with_storage(storage, [&](auto type) {
    using T = decltype(type);
    softmax_attention_kernel<<<dim3(static_cast<unsigned>((tokens + kWarps - 1) / kWarps),
                                    static_cast<unsigned>(p.heads)),
                               kWarps * kWarp, 0, stream>>>(
        p, static_cast<const T*>(qkvo), static_cast<const T*>(lepe), angle, static_cast<T*>(out));
  });
}

}  // namespace ravlt::runtime::cuda
