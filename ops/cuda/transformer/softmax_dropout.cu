// Masked softmax + dropout over attention scores: one warp per row of keys, the row held in
// registers (lane l owns the four-key groups l, l + 32, ...), so scores are read once and
// probabilities written once (twice with dropout: the kept probabilities and the dropped ones).
#include "cuda/transformer/kernel_common.cuh"

namespace deepspeed::ops::cuda::transformer {
namespace {

constexpr int kWarpsPerBlock = 4;

template <typename T, int G>
__global__ void softmax_dropout_forward_kernel(const T* __restrict__ scores, AttentionMask mask, float scale,
                                               T* __restrict__ probs, T* __restrict__ dropped, int64_t rows,
                                               int64_t heads, int64_t queries, int keys, Dropout dropout) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int quads = keys / 4;
  const T* in = scores + row * keys;
  const T* m = nullptr;
  if (mask.data) {
    const int64_t q = row % queries, bh = row / queries;
    m = static_cast<const T*>(mask.data) + (bh / heads) * mask.batch_stride + (bh % heads) * mask.head_stride +
        q * mask.row_stride;
  }
  Float4 v[G];
  float mx = -INFINITY;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = lane + 32 * g;
    if (q < quads) {
      v[g] = load4(in + 4 * q);
      Float4 add = {};
      if (m) add = load4_any(m + 4 * q);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        v[g].v[i] = v[g].v[i] * scale + add.v[i];
        mx = fmaxf(mx, v[g].v[i]);
      }
    }
  }
  mx = warp_max(mx);
  // A row masked everywhere with -inf gets zero probabilities rather than NaN.
  const float shift = mx == -INFINITY ? 0.0f : mx;
  float sum = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (lane + 32 * g < quads) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        v[g].v[i] = __expf(v[g].v[i] - shift);
        sum += v[g].v[i];
      }
    }
  }
  sum = warp_sum(sum);
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = lane + 32 * g;
    if (q < quads) {
#pragma unroll
      for (int i = 0; i < 4; ++i) v[g].v[i] *= inv;
      const int64_t at = row * keys + 4 * q;
      store4(probs + at, v[g]);
      if (dropped) {
        const Float4 f = dropout_factors(dropout, static_cast<uint64_t>(at));
#pragma unroll
        for (int i = 0; i < 4; ++i) v[g].v[i] *= f.v[i];
        store4(dropped + at, v[g]);
      }
    }
  }
}

template <typename T, int G>
__global__ void softmax_dropout_backward_kernel(const T* __restrict__ grad_dropped, const T* __restrict__ probs,
                                                T* grad_scores, float scale, int64_t rows, int keys,
                                                Dropout dropout) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int quads = keys / 4;
  Float4 gp[G], p[G];
  float dot = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = lane + 32 * g;
    if (q < quads) {
      const int64_t at = row * keys + 4 * q;
      gp[g] = load4(grad_dropped + at);
      p[g] = load4(probs + at);
      const Float4 f = dropout_factors(dropout, static_cast<uint64_t>(at));
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        gp[g].v[i] *= f.v[i];
        dot += gp[g].v[i] * p[g].v[i];
      }
    }
  }
  dot = warp_sum(dot);
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = lane + 32 * g;
    if (q < quads) {
      Float4 r;
#pragma unroll
      for (int i = 0; i < 4; ++i) r.v[i] = scale * p[g].v[i] * (gp[g].v[i] - dot);
      store4(grad_scores + row * keys + 4 * q, r);
    }
  }
}

int groups_for(int64_t keys) {
  const int64_t quads = keys / 4;
  return quads <= 32 ? 1 : quads <= 64 ? 2 : quads <= 128 ? 4 : 8;
}

#define DS_SOFTMAX_DISPATCH_GROUPS(g, G, ...) \
  switch (g) {                                \
    case 1: {                                 \
      constexpr int G = 1;                    \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
    case 2: {                                 \
      constexpr int G = 2;                    \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
    case 4: {                                 \
      constexpr int G = 4;                    \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
    default: {                                \
      constexpr int G = 8;                    \
      __VA_ARGS__;                            \
      break;                                  \
    }                                         \
  }

unsigned blocks_for(int64_t rows) { return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }

}  // namespace

void softmax_dropout_forward(DType dtype, const void* scores, const AttentionMask& mask, float scale, void* probs,
                             void* dropped, int64_t batch, int64_t heads, int64_t queries, int64_t keys,
                             const Dropout& dropout, cudaStream_t stream) {
  check_row("softmax_dropout_forward", keys, kMaxSoftmaxColumns);
  const int64_t rows = batch * heads * queries;
  if (rows <= 0) return;
  DS_TRANSFORMER_DISPATCH(dtype, T, DS_SOFTMAX_DISPATCH_GROUPS(groups_for(keys), G,
    softmax_dropout_forward_kernel<T, G><<<blocks_for(rows), 32 * kWarpsPerBlock, 0, stream>>>(
        static_cast<const T*>(scores), mask, scale, static_cast<T*>(probs), static_cast<T*>(dropped), rows, heads,
        queries, static_cast<int>(keys), dropout)))
  DS_CUDA_CHECK(cudaGetLastError());
}

void softmax_dropout_backward(DType dtype, const void* grad_dropped, const void* probs, void* grad_scores,
                              float scale, int64_t rows, int64_t keys, const Dropout& dropout,
                              cudaStream_t stream) {
  check_row("softmax_dropout_backward", keys, kMaxSoftmaxColumns);
  if (rows <= 0) return;
  DS_TRANSFORMER_DISPATCH(dtype, T, DS_SOFTMAX_DISPATCH_GROUPS(groups_for(keys), G,
    softmax_dropout_backward_kernel<T, G><<<blocks_for(rows), 32 * kWarpsPerBlock, 0, stream>>>(
        static_cast<const T*>(grad_dropped), static_cast<const T*>(probs), static_cast<T*>(grad_scores), scale,
        rows, static_cast<int>(keys), dropout)))
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda::transformer
