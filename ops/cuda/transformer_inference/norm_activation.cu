// The element-wise and row-wise kernels of a decoder block: residual add + bias + LayerNorm
// or RMSNorm in one pass over the row, and bias + GELU (tanh) or gated SiLU.
#include <algorithm>

#include "cuda/transformer_inference/inference_kernels.h"
#include "cuda/transformer_inference/kernel_support.cuh"

namespace deepspeed::ops::cuda::transformer_inference {
namespace {

constexpr int kNormThreads = 256;
constexpr int kActivationThreads = 256;

// One block per row. The residual is stored rounded to T first and normalised from the
// stored values, as the unfused ATen path does (its add writes T, then LayerNorm reads it).
template <typename T>
__global__ void add_residual_norm_kernel(T* __restrict__ residual, const T* __restrict__ x, const T* __restrict__ bias,
                                         const T* __restrict__ weight, const T* __restrict__ norm_bias,
                                         T* __restrict__ y, int64_t cols, float eps, bool rms) {
  __shared__ float shared[33];
  T* r = residual + blockIdx.x * cols;
  const T* xr = x + blockIdx.x * cols;
  T* yr = y + blockIdx.x * cols;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = to_float(xr[c]);
    if (bias) v += to_float(bias[c]);
    const T stored = from_float<T>(to_float(r[c]) + v);
    r[c] = stored;
    sum += rms ? 0.0f : to_float(stored);
  }
  const float mean = rms ? 0.0f : block_reduce<false>(sum, shared) / static_cast<float>(cols);
  float squares = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = to_float(r[c]) - mean;
    squares += d * d;
  }
  const float rstd = rsqrtf(block_reduce<false>(squares, shared) / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = (to_float(r[c]) - mean) * rstd;
    if (rms) v = to_float(from_float<T>(v));  // LLaMA rounds the normalised value, then scales
    v *= to_float(weight[c]);
    if (norm_bias) v += to_float(norm_bias[c]);
    yr[c] = from_float<T>(v);
  }
}

__device__ __forceinline__ float gelu_tanh(float u) {
  constexpr float kC0 = 0.7978845608028654f;  // sqrt(2 / pi)
  constexpr float kC1 = 0.044715f;
  return 0.5f * u * (1.0f + tanhf(kC0 * (u + kC1 * u * u * u)));
}

template <typename T>
__global__ void bias_activation_kernel(const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ y,
                                       int64_t rows, int64_t cols, bool gated) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / cols, c = i % cols;
    if (gated) {
      const T* xr = x + row * 2 * cols;
      float g = to_float(xr[c]), u = to_float(xr[cols + c]);
      if (bias) {
        g += to_float(bias[c]);
        u += to_float(bias[cols + c]);
      }
      y[i] = from_float<T>(g / (1.0f + expf(-g)) * u);
    } else {
      float u = to_float(x[i]);
      if (bias) u += to_float(bias[c]);
      y[i] = from_float<T>(gelu_tanh(u));
    }
  }
}

}  // namespace

void add_residual_norm(DType dtype, void* residual, const void* x, const void* bias, const void* weight,
                       const void* norm_bias, void* y, int64_t rows, int64_t cols, float eps, bool rms,
                       cudaStream_t stream) {
  if (rows == 0) return;
  with_element_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    add_residual_norm_kernel<T><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
        static_cast<T*>(residual), static_cast<const T*>(x), static_cast<const T*>(bias),
        static_cast<const T*>(weight), static_cast<const T*>(norm_bias), static_cast<T*>(y), cols, eps, rms);
  });
  DS_CUDA_CHECK(cudaGetLastError());
}

void bias_activation(DType dtype, const void* x, const void* bias, void* y, int64_t rows, int64_t cols, bool gated,
                     cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return;
  const int64_t blocks = std::min<int64_t>((n + kActivationThreads - 1) / kActivationThreads, 65535);
  with_element_type(dtype, [&](auto tag) {
    using T = decltype(tag);
    bias_activation_kernel<T><<<static_cast<unsigned>(blocks), kActivationThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<T*>(y), rows, cols, gated);
  });
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda::transformer_inference
