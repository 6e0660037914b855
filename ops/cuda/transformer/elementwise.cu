// The transformer op's element-wise kernels: dropout, bias + dropout + residual, bias + GELU
// and its gradient. Four consecutive elements per thread and step (one vector access each).
#include "cuda/transformer/kernel_common.cuh"

namespace deepspeed::ops::cuda::transformer {
namespace {

constexpr int kThreads = 256;
constexpr float kGeluC0 = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluC1 = 0.044715f;

template <typename T>
__global__ void dropout_kernel(const T* x, T* y, int64_t quads, Dropout d) {
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < quads;
       q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Float4 v = load4(x + 4 * q);
    const Float4 f = dropout_factors(d, static_cast<uint64_t>(4 * q));
#pragma unroll
    for (int i = 0; i < 4; ++i) v.v[i] *= f.v[i];
    store4(y + 4 * q, v);
  }
}

template <typename T>
__global__ void bias_dropout_residual_kernel(const T* __restrict__ x, const T* __restrict__ bias,
                                             const T* __restrict__ residual, T* __restrict__ out, int64_t quads,
                                             int cols, Dropout d) {
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < quads;
       q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Float4 v = load4(x + 4 * q);
    const Float4 b = load4(bias + (4 * q) % cols), r = load4(residual + 4 * q);
    const Float4 f = dropout_factors(d, static_cast<uint64_t>(4 * q));
#pragma unroll
    for (int i = 0; i < 4; ++i) v.v[i] = r.v[i] + (v.v[i] + b.v[i]) * f.v[i];
    store4(out + 4 * q, v);
  }
}

__device__ __forceinline__ float gelu(float u) {
  return 0.5f * u * (1.0f + tanhf(kGeluC0 * (u + kGeluC1 * u * u * u)));
}

__device__ __forceinline__ float gelu_grad(float u) {
  const float t = tanhf(kGeluC0 * (u + kGeluC1 * u * u * u));
  return 0.5f * (1.0f + t) + 0.5f * u * (1.0f - t * t) * kGeluC0 * (1.0f + 3.0f * kGeluC1 * u * u);
}

template <typename T>
__global__ void bias_gelu_forward_kernel(const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ out,
                                         int64_t quads, int cols) {
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < quads;
       q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Float4 v = load4(x + 4 * q);
    const Float4 b = load4(bias + (4 * q) % cols);
#pragma unroll
    for (int i = 0; i < 4; ++i) v.v[i] = gelu(v.v[i] + b.v[i]);
    store4(out + 4 * q, v);
  }
}

template <typename T>
__global__ void bias_gelu_backward_kernel(const T* grad, const T* __restrict__ x, const T* __restrict__ bias,
                                          T* grad_x, int64_t quads, int cols) {
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < quads;
       q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Float4 g = load4(grad + 4 * q);
    const Float4 v = load4(x + 4 * q), b = load4(bias + (4 * q) % cols);
#pragma unroll
    for (int i = 0; i < 4; ++i) g.v[i] *= gelu_grad(v.v[i] + b.v[i]);
    store4(grad_x + 4 * q, g);
  }
}

void check_elements(const char* kernel, int64_t n) {
  if (n % 4 != 0) {
    throw std::invalid_argument(std::string("transformer kernel ") + kernel + ": " + std::to_string(n) +
                                " elements; the count must be a multiple of 4");
  }
}

}  // namespace

void dropout(DType dtype, const void* x, void* y, int64_t n, const Dropout& d, cudaStream_t stream) {
  check_elements("dropout", n);
  if (n <= 0) return;
  DS_TRANSFORMER_DISPATCH(dtype, T, dropout_kernel<T><<<grid_for(n / 4, kThreads), kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<T*>(y), n / 4, d))
  DS_CUDA_CHECK(cudaGetLastError());
}

void bias_dropout_residual(DType dtype, const void* x, const void* bias, const void* residual, void* out,
                           int64_t rows, int64_t cols, const Dropout& d, cudaStream_t stream) {
  check_row("bias_dropout_residual", cols, INT32_MAX);
  if (rows <= 0) return;
  const int64_t quads = rows * cols / 4;
  DS_TRANSFORMER_DISPATCH(dtype, T,
    bias_dropout_residual_kernel<T><<<grid_for(quads, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<const T*>(residual), static_cast<T*>(out),
        quads, static_cast<int>(cols), d))
  DS_CUDA_CHECK(cudaGetLastError());
}

void bias_gelu_forward(DType dtype, const void* x, const void* bias, void* out, int64_t rows, int64_t cols,
                       cudaStream_t stream) {
  check_row("bias_gelu_forward", cols, INT32_MAX);
  if (rows <= 0) return;
  const int64_t quads = rows * cols / 4;
  DS_TRANSFORMER_DISPATCH(dtype, T,
    bias_gelu_forward_kernel<T><<<grid_for(quads, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<T*>(out), quads, static_cast<int>(cols)))
  DS_CUDA_CHECK(cudaGetLastError());
}

void bias_gelu_backward(DType dtype, const void* grad, const void* x, const void* bias, void* grad_x, int64_t rows,
                        int64_t cols, cudaStream_t stream) {
  check_row("bias_gelu_backward", cols, INT32_MAX);
  if (rows <= 0) return;
  const int64_t quads = rows * cols / 4;
  DS_TRANSFORMER_DISPATCH(dtype, T,
    bias_gelu_backward_kernel<T><<<grid_for(quads, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(grad), static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<T*>(grad_x),
        quads, static_cast<int>(cols)))
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda::transformer
