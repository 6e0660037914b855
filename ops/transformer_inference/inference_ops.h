// The transformer_inference op: the steps between the GEMMs of a decoder block at inference
// time (DeepSpeed's csrc/transformer/inference), on LibTorch tensors. Every function has an
// ATen path (any device, the reference: unfused) and, where the op's CUDA kernels are built,
// a fused kernel for CUDA tensors. The GEMMs are not here: at::linear / at::matmul (cuBLAS).
//
// The KV cache of one layer is two tensors [batch, heads, max_tokens, head_dim]. Prompts of
// different lengths are left-padded: sequence b's first `pads[b]` cache slots hold padding,
// which no query attends to, and its token at cache slot s has position s - pads[b].
//
// `fused` false keeps a function on the ATen path on every device (the engine without kernel
// injection).
//
// The decode functions (one new token per sequence) read the cache length from `length`, an
// int64 tensor of one element on the cache's device, and never from the host, so that a CUDA
// graph captured once replays every step.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace deepspeed::ops::transformer_inference {

enum class NormKind { LayerNorm, RMSNorm };
enum class Activation { GeluTanh, GatedSilu };

// Whether this build has the op's CUDA kernels (DS_BUILD_TRANSFORMER_INFERENCE on a CUDA build).
bool cuda_kernels_built();

// norm(x) over the last dimension: LayerNorm (weight, bias) or RMSNorm (weight; bias undefined).
torch::Tensor norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                   NormKind kind);

// residual += x + bias (bias may be undefined), in place; returns norm(residual).
torch::Tensor add_residual_norm(torch::Tensor& residual, const torch::Tensor& x, const torch::Tensor& bias,
                                const torch::Tensor& weight, const torch::Tensor& norm_bias, double eps,
                                NormKind kind, bool fused = true);

// GeluTanh: gelu_tanh(x + bias). GatedSilu: x's last dimension is [gate; up] (2F), returns
// silu(gate) * up [.., F] (bias, when defined, is added to x first).
torch::Tensor bias_activation(const torch::Tensor& x, const torch::Tensor& bias, Activation activation,
                              bool fused = true);

// Prefill: qkv [B, T, 3 * H * D] of the tokens at cache slots [start, start + T); positions
// [B, T] int64. Applies rotary embeddings (rotate-half, base `rope_theta`) to q and k when
// rope_theta > 0, writes k and v into the caches and returns q [B, H, T, D].
torch::Tensor prefill_qkv(const torch::Tensor& qkv, const torch::Tensor& positions, torch::Tensor& cache_k,
                          torch::Tensor& cache_v, int64_t start, double rope_theta);

// Prefill attention of q [B, H, T, D] (slots [start, start + T)) over the cache's slots
// [0, start + T): causal, padding slots (below pads[b]) masked. Returns [B, T, H * D].
torch::Tensor prefill_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                                const torch::Tensor& pads, int64_t start, bool fused = true);

// Decode: qkv [B, 3 * H * D] of one token per sequence at cache slot *length; its position is
// *length - pads[b]. Rotary as prefill_qkv, k and v appended at slot *length; returns q [B, H, D].
torch::Tensor decode_qkv(const torch::Tensor& qkv, const torch::Tensor& length, const torch::Tensor& pads,
                         torch::Tensor& cache_k, torch::Tensor& cache_v, double rope_theta, bool fused = true);

// Decode attention of q [B, H, D] over slots [pads[b], *length] (the token just appended
// included). Returns [B, H * D]. fp32 accumulation.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& cache_k, const torch::Tensor& cache_v,
                               const torch::Tensor& pads, const torch::Tensor& length, bool fused = true);

}  // namespace deepspeed::ops::transformer_inference
