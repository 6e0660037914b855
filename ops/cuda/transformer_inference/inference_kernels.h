// The transformer_inference op's CUDA kernels over raw device pointers, on a given stream;
// ops/transformer_inference/cuda_inference_ops.cpp is the LibTorch side. fp32, fp16 or bf16
// in and out, fp32 arithmetic. Rows are contiguous.
//
// The decode kernels read the cache length (int64, device memory) when they run, not when
// they are launched: a CUDA graph captured for one decode step replays for every step.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "cuda/common/dtype.h"

namespace deepspeed::ops::cuda::transformer_inference {

// The longest cache and the largest head the decode kernels take.
inline constexpr int64_t kMaxDecodeTokens = 65536;
inline constexpr int64_t kMaxHeadDim = 256;

// residual[r] += x[r] + bias; y[r] = norm(residual[r]) * weight (+ norm_bias for LayerNorm).
// bias and norm_bias may be null. rms: RMSNorm instead of LayerNorm.
void add_residual_norm(DType dtype, void* residual, const void* x, const void* bias, const void* weight,
                       const void* norm_bias, void* y, int64_t rows, int64_t cols, float eps, bool rms,
                       cudaStream_t stream);

// gated: x [rows, 2 * cols] = [gate; up] -> y [rows, cols] = silu(gate + b) * (up + b');
// otherwise x [rows, cols] -> y = gelu_tanh(x + bias). bias may be null.
void bias_activation(DType dtype, const void* x, const void* bias, void* y, int64_t rows, int64_t cols, bool gated,
                     cudaStream_t stream);

struct DecodeCache {
  void* k = nullptr;  // [batch, heads, max_tokens, head_dim]
  void* v = nullptr;
  int64_t batch = 0, heads = 0, max_tokens = 0, head_dim = 0;
  const int64_t* length = nullptr;  // device: the slot of the token being decoded
  const int64_t* pads = nullptr;    // device: [batch], the first real slot of each sequence
};

// qkv [batch, 3 * heads * head_dim] -> q [batch, heads, head_dim]; k and v written at slot
// *length; rotary (rotate-half, position *length - pads[b]) on q and k when rope_theta > 0.
void decode_qkv(DType dtype, const void* qkv, void* q, const DecodeCache& cache, float rope_theta,
                cudaStream_t stream);

// out [batch, heads * head_dim] = softmax(q k^T / sqrt(head_dim)) v over slots
// [pads[b], *length]. The keys are split into decode_attention_splits(max_tokens) parts, each
// one block (so that one sequence of few heads still spreads over the GPU), combined by a
// second kernel; `workspace` holds decode_attention_workspace(cache) floats.
int64_t decode_attention_splits(int64_t max_tokens);
int64_t decode_attention_workspace(const DecodeCache& cache);
void decode_attention(DType dtype, const void* q, void* out, float* workspace, const DecodeCache& cache,
                      cudaStream_t stream);

}  // namespace deepspeed::ops::cuda::transformer_inference
