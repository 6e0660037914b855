// The transformer_inference functions on the op's fused CUDA kernels
// (cuda/transformer_inference/), on torch's current stream; inference_ops.cpp calls them for
// contiguous CUDA tensors when cuda_kernels_built(). Same contracts as inference_ops.h.
#pragma once

#include "transformer_inference/inference_ops.h"

namespace deepspeed::ops::transformer_inference {

torch::Tensor cuda_add_residual_norm(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& bias,
                                     const torch::Tensor& weight, const torch::Tensor& norm_bias, double eps,
                                     NormKind kind);
torch::Tensor cuda_bias_activation(const torch::Tensor& x, const torch::Tensor& bias, Activation activation);
torch::Tensor cuda_decode_qkv(const torch::Tensor& qkv, const torch::Tensor& length, const torch::Tensor& pads,
                              torch::Tensor& cache_k, torch::Tensor& cache_v, double rope_theta);
torch::Tensor cuda_decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                                    const torch::Tensor& pads, const torch::Tensor& length);

}  // namespace deepspeed::ops::transformer_inference
