// The layer-norm kernels, included by layer_norm.cu (deterministic backward) and by
// stochastic_transformer/layer_norm_stochastic.cu (atomic backward), as DeepSpeed builds one
// source twice for its two transformer ops.
//
// One block per row (forward) or per group of rows (backward); thread t owns the four-column
// groups t, t + blockDim, ... (G of them), so a row is read once into registers and the
// backward's per-column sums stay in registers across the rows of a block.
#pragma once

#include "cuda/transformer/kernel_common.cuh"

namespace deepspeed::ops::cuda::transformer {

struct RowShape {
  int threads;  // per block
  int groups;   // G: four-column groups per thread
};

// The smallest G in {1, 2, 4, 8} that covers cols with 128 threads, else 8 groups and more
// threads (cols <= kMaxLayerNormColumns keeps that within 1024).
inline RowShape row_shape(int64_t cols) {
  const int64_t quads = cols / 4;
  for (int g = 1; g <= 8; g *= 2) {
    if (quads <= 128 * g) return {128, g};
  }
  const int64_t threads = ((quads + 7) / 8 + 31) / 32 * 32;
  return {static_cast<int>(threads), 8};
}

#define DS_LN_DISPATCH_GROUPS(g, G, ...) \
  switch (g) {                           \
    case 1: {                            \
      constexpr int G = 1;               \
      __VA_ARGS__;                       \
      break;                             \
    }                                    \
    case 2: {                            \
      constexpr int G = 2;               \
      __VA_ARGS__;                       \
      break;                             \
    }                                    \
    case 4: {                            \
      constexpr int G = 4;               \
      __VA_ARGS__;                       \
      break;                             \
    }                                    \
    default: {                           \
      constexpr int G = 8;               \
      __VA_ARGS__;                       \
      break;                             \
    }                                    \
  }

template <typename T, int G>
__global__ void layer_norm_forward_kernel(const T* __restrict__ x, const T* __restrict__ gamma,
                                          const T* __restrict__ beta, T* __restrict__ y, float* __restrict__ mean_out,
                                          float* __restrict__ rstd_out, int cols, float eps) {
  __shared__ float shared[66];
  const int64_t row = blockIdx.x;
  const int quads = cols / 4;
  const T* in = x + row * cols;
  Float4 v[G];
  float sum = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = threadIdx.x + g * blockDim.x;
    if (q < quads) {
      v[g] = load4(in + 4 * q);
#pragma unroll
      for (int i = 0; i < 4; ++i) sum += v[g].v[i];
    }
  }
  const float mean = block_sum2(sum, 0.0f, shared).x / cols;
  // The variance from the centred values (two passes over registers), not E[x²] - mean².
  float sq = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = threadIdx.x + g * blockDim.x;
    if (q < quads) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float c = v[g].v[i] - mean;
        sq += c * c;
      }
    }
  }
  const float rstd = rsqrtf(block_sum2(sq, 0.0f, shared).x / cols + eps);
  T* out = y + row * cols;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = threadIdx.x + g * blockDim.x;
    if (q < quads) {
      const Float4 w = load4(gamma + 4 * q), b = load4(beta + 4 * q);
      Float4 r;
#pragma unroll
      for (int i = 0; i < 4; ++i) r.v[i] = (v[g].v[i] - mean) * rstd * w.v[i] + b.v[i];
      store4(out + 4 * q, r);
    }
  }
  if (threadIdx.x == 0) {
    if (mean_out) mean_out[row] = mean;
    if (rstd_out) rstd_out[row] = rstd;
  }
}

// Rows blockIdx.x, blockIdx.x + gridDim.x, ...; the block's column sums of dy * x̂ and dy go
// to partial[blockIdx.x] (kAtomic: added into dgamma/dbeta).
template <typename T, int G, bool kAtomic>
__global__ void layer_norm_backward_kernel(LayerNormGrad a, float* __restrict__ partial) {
  __shared__ float shared[66];
  const int cols = static_cast<int>(a.cols);
  const int quads = cols / 4;
  const T* gamma = static_cast<const T*>(a.gamma);
  const T* beta = static_cast<const T*>(a.beta);
  Float4 w[G], b[G], dg[G], db[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = threadIdx.x + g * blockDim.x;
#pragma unroll
    for (int i = 0; i < 4; ++i) dg[g].v[i] = db[g].v[i] = 0.0f;
    if (q < quads) {
      w[g] = load4(gamma + 4 * q);
      b[g] = load4(beta + 4 * q);
    }
  }
  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* dy = static_cast<const T*>(a.dy) + row * cols;
    const T* saved = static_cast<const T*>(a.saved) + row * cols;
    const float rstd = a.rstd[row];
    const float mean = a.from_output ? 0.0f : a.mean[row];
    Float4 gy[G], xh[G];
    float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const int q = threadIdx.x + g * blockDim.x;
      if (q < quads) {
        gy[g] = load4(dy + 4 * q);
        const Float4 s = load4(saved + 4 * q);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          xh[g].v[i] = a.from_output ? (s.v[i] - b[g].v[i]) / w[g].v[i] : (s.v[i] - mean) * rstd;
          const float gw = gy[g].v[i] * w[g].v[i];
          s1 += gw;
          s2 += gw * xh[g].v[i];
          dg[g].v[i] += gy[g].v[i] * xh[g].v[i];
          db[g].v[i] += gy[g].v[i];
        }
      }
    }
    const float2 sums = block_sum2(s1, s2, shared);
    const float m1 = sums.x / cols, m2 = sums.y / cols;
    T* dx = static_cast<T*>(a.dx) + row * cols;
    const T* res = a.residual_grad ? static_cast<const T*>(a.residual_grad) + row * cols : nullptr;
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const int q = threadIdx.x + g * blockDim.x;
      if (q < quads) {
        Float4 r = {};
        if (res) r = load4(res + 4 * q);
#pragma unroll
        for (int i = 0; i < 4; ++i) r.v[i] += rstd * (gy[g].v[i] * w[g].v[i] - m1 - xh[g].v[i] * m2);
        store4(dx + 4 * q, r);
      }
    }
  }
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int q = threadIdx.x + g * blockDim.x;
    if (q < quads) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int c = 4 * q + i;
        if constexpr (kAtomic) {
          atomicAdd(a.dgamma + c, dg[g].v[i]);
          atomicAdd(a.dbeta + c, db[g].v[i]);
        } else {
          partial[static_cast<int64_t>(blockIdx.x) * cols + c] = dg[g].v[i];
          partial[static_cast<int64_t>(gridDim.x + blockIdx.x) * cols + c] = db[g].v[i];
        }
      }
    }
  }
}

// Blocks for the backward: enough to fill the GPU, few enough that the partial sums stay small.
inline int layer_norm_backward_blocks(int64_t rows) { return static_cast<int>(rows < 512 ? rows : 512); }

template <bool kAtomic>
void launch_layer_norm_backward(DType dtype, const LayerNormGrad& grad, float* partial, cudaStream_t stream) {
  check_row("layer_norm_backward", grad.cols, kMaxLayerNormColumns);
  if (grad.rows <= 0) return;
  const RowShape shape = row_shape(grad.cols);
  const int blocks = layer_norm_backward_blocks(grad.rows);
  DS_TRANSFORMER_DISPATCH(dtype, T, DS_LN_DISPATCH_GROUPS(shape.groups, G,
    layer_norm_backward_kernel<T, G, kAtomic><<<blocks, shape.threads, 0, stream>>>(grad, partial)))
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda::transformer
