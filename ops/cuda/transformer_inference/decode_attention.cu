// Decode-time kernels over the KV cache: the new token's q, k, v (rotary applied, k and v
// appended at the cache length) and one query's attention over the cache. Both read the
// cache length from device memory when they run (a captured CUDA graph replays them at every
// step) and are launched with one block per (sequence, head).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "cuda/transformer_inference/inference_kernels.h"
#include "cuda/transformer_inference/kernel_support.cuh"

namespace deepspeed::ops::cuda::transformer_inference {
namespace {

constexpr int kAttentionThreads = 256;

// Grid (heads, batch); head_dim / 2 threads, each owning the pair (i, i + head_dim / 2) that
// rotate-half rotates together.
template <typename T>
__global__ void decode_qkv_kernel(const T* __restrict__ qkv, T* __restrict__ q, DecodeCache c, float rope_theta) {
  const int64_t h = blockIdx.x, b = blockIdx.y, d = c.head_dim, half = d / 2;
  const int64_t slot = *c.length;
  const T* row = qkv + b * 3 * c.heads * d;
  const T* qs = row + h * d;
  const T* ks = row + (c.heads + h) * d;
  const T* vs = row + (2 * c.heads + h) * d;
  const int64_t cache_at = ((b * c.heads + h) * c.max_tokens + slot) * d;
  T* kc = static_cast<T*>(c.k) + cache_at;
  T* vc = static_cast<T*>(c.v) + cache_at;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float q0 = to_float(qs[i]), q1 = to_float(qs[i + half]);
    float k0 = to_float(ks[i]), k1 = to_float(ks[i + half]);
    if (rope_theta > 0.0f) {
      const float position = static_cast<float>(slot - c.pads[b]);
      const float inv_freq = powf(rope_theta, -static_cast<float>(2 * i) / static_cast<float>(d));
      float sn, cs;
      sincosf(position * inv_freq, &sn, &cs);
      const float rq0 = q0 * cs - q1 * sn, rq1 = q1 * cs + q0 * sn;
      const float rk0 = k0 * cs - k1 * sn, rk1 = k1 * cs + k0 * sn;
      q0 = rq0, q1 = rq1, k0 = rk0, k1 = rk1;
    }
    T* qo = q + (b * c.heads + h) * d;
    qo[i] = from_float<T>(q0);
    qo[i + half] = from_float<T>(q1);
    kc[i] = from_float<T>(k0);
    kc[i + half] = from_float<T>(k1);
    vc[i] = vs[i];
    vc[i + half] = vs[i + half];
  }
}

// Grid (heads, batch). Shared memory: q (head_dim floats), then one score per cache slot,
// then the partial outputs of the key groups (kAttentionThreads floats).
template <typename T>
__global__ void decode_attention_kernel(const T* __restrict__ q, T* __restrict__ out, DecodeCache c) {
  extern __shared__ float smem[];
  __shared__ float reduce[33];
  const int64_t h = blockIdx.x, b = blockIdx.y, d = c.head_dim;
  const int64_t first = c.pads[b], last = *c.length;  // slots [first, last]
  const int64_t keys = last - first + 1;
  float* qf = smem;
  float* scores = smem + d;
  float* partial = scores + c.max_tokens;
  const T* qh = q + (b * c.heads + h) * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) qf[i] = to_float(qh[i]);
  __syncthreads();

  const int64_t head_base = (b * c.heads + h) * c.max_tokens;
  const T* kh = static_cast<const T*>(c.k) + head_base * d;
  const T* vh = static_cast<const T*>(c.v) + head_base * d;
  const float scale = rsqrtf(static_cast<float>(d));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  // Scores: one warp per key, the lanes across head_dim.
  for (int64_t j = warp; j < keys; j += warps) {
    const T* kj = kh + (first + j) * d;
    float dot = 0.0f;
    for (int64_t i = lane; i < d; i += 32) dot += qf[i] * to_float(kj[i]);
    dot = warp_sum(dot);
    if (lane == 0) scores[j] = dot * scale;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) m = fmaxf(m, scores[j]);
  m = block_reduce<true>(m, reduce);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) {
    const float e = expf(scores[j] - m);
    scores[j] = e;
    sum += e;
  }
  sum = block_reduce<false>(sum, reduce);  // its barriers also publish the exponentials

  // Output: thread t owns dimension t % d for the keys of group t / d.
  const int64_t groups = blockDim.x / d, group = threadIdx.x / d, dim = threadIdx.x % d;
  float acc = 0.0f;
  if (group < groups) {
    for (int64_t j = group; j < keys; j += groups) acc += scores[j] * to_float(vh[(first + j) * d + dim]);
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.x < d) {
    float total = 0.0f;
    for (int64_t g = 0; g < groups; ++g) total += partial[g * d + threadIdx.x];
    out[b * c.heads * d + h * d + threadIdx.x] = from_float<T>(total / sum);
  }
}

}  // namespace

void decode_qkv(DType dtype, const void* qkv, void* q, const DecodeCache& c, float rope_theta, cudaStream_t stream) {
  if (c.batch == 0) return;
  const dim3 grid(static_cast<unsigned>(c.heads), static_cast<unsigned>(c.batch));
  const int threads = static_cast<int>(std::min<int64_t>(std::max<int64_t>(c.head_dim / 2, 32), 512));
  with_element_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    decode_qkv_kernel<T><<<grid, threads, 0, stream>>>(static_cast<const T*>(qkv), static_cast<T*>(q), c, rope_theta);
  });
  DS_CUDA_CHECK(cudaGetLastError());
}

void decode_attention(DType dtype, const void* q, void* out, const DecodeCache& c, cudaStream_t stream) {
  if (c.batch == 0) return;
  if (c.head_dim > kAttentionThreads || c.max_tokens > kMaxDecodeTokens) {
    throw std::invalid_argument("decode_attention: head_dim above 256 or a cache above kMaxDecodeTokens slots");
  }
  const dim3 grid(static_cast<unsigned>(c.heads), static_cast<unsigned>(c.batch));
  const size_t shared = static_cast<size_t>(c.head_dim + c.max_tokens + kAttentionThreads) * sizeof(float);
  with_element_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto kernel = decode_attention_kernel<T>;
    if (shared > 48 * 1024) {
      DS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)));
    }
    kernel<<<grid, kAttentionThreads, shared, stream>>>(static_cast<const T*>(q), static_cast<T*>(out), c);
  });
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda::transformer_inference
