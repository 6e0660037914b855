#include "cuda/transformer/layer_norm_kernels.cuh"

namespace deepspeed::ops::cuda::transformer {
namespace {

// dgamma[c] = sum over blocks b of partial[b][c] in the order of b, dbeta from the second half.
__global__ void sum_block_partials_kernel(const float* __restrict__ partial, int blocks, int cols,
                                          float* __restrict__ dgamma, float* __restrict__ dbeta) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float g = 0.0f, b = 0.0f;
  for (int k = 0; k < blocks; ++k) {
    g += partial[static_cast<int64_t>(k) * cols + c];
    b += partial[static_cast<int64_t>(blocks + k) * cols + c];
  }
  dgamma[c] = g;
  dbeta[c] = b;
}

}  // namespace

void layer_norm_forward(DType dtype, const void* x, const void* gamma, const void* beta, void* y, float* mean,
                        float* rstd, int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  check_row("layer_norm_forward", cols, kMaxLayerNormColumns);
  if (rows <= 0) return;
  const RowShape shape = row_shape(cols);
  DS_TRANSFORMER_DISPATCH(dtype, T, DS_LN_DISPATCH_GROUPS(shape.groups, G,
    layer_norm_forward_kernel<T, G><<<static_cast<unsigned>(rows), shape.threads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(gamma), static_cast<const T*>(beta), static_cast<T*>(y),
        mean, rstd, static_cast<int>(cols), eps)))
  DS_CUDA_CHECK(cudaGetLastError());
}

int64_t layer_norm_backward_workspace(int64_t rows, int64_t cols) {
  return 2 * static_cast<int64_t>(layer_norm_backward_blocks(rows)) * cols;
}

void layer_norm_backward(DType dtype, const LayerNormGrad& grad, float* workspace, cudaStream_t stream) {
  launch_layer_norm_backward<false>(dtype, grad, workspace, stream);
  if (grad.rows <= 0) return;
  const int cols = static_cast<int>(grad.cols);
  sum_block_partials_kernel<<<(cols + 255) / 256, 256, 0, stream>>>(
      workspace, layer_norm_backward_blocks(grad.rows), cols, grad.dgamma, grad.dbeta);
  DS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace deepspeed::ops::cuda::transformer
