// Decode-time kernels over the KV cache: the new token's q, k, v (rotary applied, k and v
// appended at the cache length) and one query's attention over the cache. Both read the
// cache length from device memory when they run (a captured CUDA graph replays them at every
// step); decode_qkv runs one block per (sequence, head), attention one per (sequence, head,
// split of the keys) and a combining kernel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "cuda/transformer_inference/inference_kernels.h"
#include "cuda/transformer_inference/kernel_support.cuh"

namespace deepspeed::ops::cuda::transformer_inference {
namespace {

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

// Keys per block of the split attention: one thread per key while scoring.
constexpr int kKeysPerSplit = 128;

// q . k over head_dim elements, k read 16 bytes at a time where the row allows.
template <typename T>
__device__ __forceinline__ float dot_row(const float* __restrict__ q, const T* __restrict__ k, int64_t d) {
  constexpr int kPer = 16 / sizeof(T);
  float acc = 0.0f;
  if (d % kPer == 0 && reinterpret_cast<uintptr_t>(k) % 16 == 0) {
    const uint4* k4 = reinterpret_cast<const uint4*>(k);
    for (int64_t i = 0; i < d / kPer; ++i) {
      const uint4 raw = k4[i];
      const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
      for (int j = 0; j < kPer; ++j) acc += q[i * kPer + j] * to_float(e[j]);
    }
  } else {
    for (int64_t i = 0; i < d; ++i) acc += q[i] * to_float(k[i]);
  }
  return acc;
}

// Grid (heads, batch, splits), kKeysPerSplit threads. Split s of a sequence's keys
// [pads[b], *length] takes an equal share (at most kKeysPerSplit: the splits are enough for
// max_tokens) and writes its unnormalised output (sum of exp(score - m) v), m and the sum of
// exp(score - m) to workspace [batch, heads, splits, head_dim + 2].
template <typename T>
__global__ void decode_attention_split_kernel(const T* __restrict__ q, float* __restrict__ workspace, DecodeCache c) {
  __shared__ float qf[kMaxHeadDim];
  __shared__ float probs[kKeysPerSplit];
  __shared__ float reduce[33];
  const int64_t h = blockIdx.x, b = blockIdx.y, s = blockIdx.z, splits = gridDim.z, d = c.head_dim;
  const int64_t first = c.pads[b], keys = *c.length - first + 1;
  const int64_t per_split = (keys + splits - 1) / splits;
  const int64_t begin = s * per_split, count = max(int64_t{0}, min(per_split, keys - begin));
  float* out = workspace + ((b * c.heads + h) * splits + s) * (d + 2);
  const T* qh = q + (b * c.heads + h) * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) qf[i] = to_float(qh[i]);
  __syncthreads();
  const int64_t head_base = (b * c.heads + h) * c.max_tokens + first + begin;
  const T* kh = static_cast<const T*>(c.k) + head_base * d;
  const T* vh = static_cast<const T*>(c.v) + head_base * d;
  float score = -INFINITY;
  if (threadIdx.x < count) score = dot_row(qf, kh + threadIdx.x * d, d) * rsqrtf(static_cast<float>(d));
  const float m = block_reduce<true>(score, reduce);
  const float p = threadIdx.x < count ? expf(score - m) : 0.0f;
  probs[threadIdx.x] = p;
  const float l = block_reduce<false>(p, reduce);  // its barriers publish probs
  for (int64_t dim = threadIdx.x; dim < d; dim += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j < count; ++j) acc += probs[j] * to_float(vh[j * d + dim]);
    out[dim] = acc;
  }
  if (threadIdx.x == 0) {
    out[d] = count > 0 ? m : -INFINITY;
    out[d + 1] = l;
  }
}

// Grid (heads, batch), head_dim threads: the splits' outputs rescaled to one maximum and summed.
template <typename T>
__global__ void decode_attention_combine_kernel(const float* __restrict__ workspace, T* __restrict__ out, DecodeCache c,
                                                int64_t splits) {
  const int64_t h = blockIdx.x, b = blockIdx.y, d = c.head_dim;
  const float* parts = workspace + (b * c.heads + h) * splits * (d + 2);
  float m = -INFINITY;
  for (int64_t s = 0; s < splits; ++s) m = fmaxf(m, parts[s * (d + 2) + d]);
  for (int64_t dim = threadIdx.x; dim < d; dim += blockDim.x) {
    float acc = 0.0f, l = 0.0f;
    for (int64_t s = 0; s < splits; ++s) {
      const float* part = parts + s * (d + 2);
      if (part[d] == -INFINITY) continue;  // an empty split
      const float scale = expf(part[d] - m);
      acc += part[dim] * scale;
      l += part[d + 1] * scale;
    }
    out[(b * c.heads + h) * d + dim] = from_float<T>(acc / l);
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

int64_t decode_attention_splits(int64_t max_tokens) { return std::max<int64_t>(1, (max_tokens + kKeysPerSplit - 1) / kKeysPerSplit); }

int64_t decode_attention_workspace(const DecodeCache& c) {
  return c.batch * c.heads * decode_attention_splits(c.max_tokens) * (c.head_dim + 2);
}

void decode_attention(DType dtype, const void* q, void* out, float* workspace, const DecodeCache& c,
                      cudaStream_t stream) {
  if (c.batch == 0) return;
  if (c.head_dim > kMaxHeadDim || c.max_tokens > kMaxDecodeTokens) {
    throw std::invalid_argument("decode_attention: head_dim above 256 or a cache above kMaxDecodeTokens slots");
  }
  const int64_t splits = decode_attention_splits(c.max_tokens);
  const dim3 grid(static_cast<unsigned>(c.heads), static_cast<unsigned>(c.batch), static_cast<unsigned>(splits));
  const dim3 combine_grid(static_cast<unsigned>(c.heads), static_cast<unsigned>(c.batch));
  with_element_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    decode_attention_split_kernel<T><<<grid, kKeysPerSplit, 0, stream>>>(static_cast<const T*>(q), workspace, c);
    decode_attention_combine_kernel<T><<<combine_grid, static_cast<unsigned>(c.head_dim), 0, stream>>>(
        workspace, static_cast<T*>(out), c, splits);
  });
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda::transformer_inference
