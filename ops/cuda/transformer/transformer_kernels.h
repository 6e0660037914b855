// The transformer op's fused CUDA kernels (DeepSpeed's csrc/transformer: layer norm, bias +
// GELU, bias + dropout + residual, masked softmax + dropout), over raw device pointers on a
// given stream; ops/transformer/cuda_primitives.cpp is the LibTorch side. The GEMMs are not
// here: they are cuBLAS calls made through ATen.
//
// Every kernel reads and writes fp32, fp16 or bf16 and computes in fp32. Rows are contiguous;
// a row's length (hidden size, key length) must be a multiple of 4 (the kernels move four
// elements per access) and each pointer aligned to 4 elements, as fresh allocations are.
// Dropout masks are never stored: element i of a tensor is kept when
// philox::keep(seed, offset, i, ratio) (cuda/common/philox.h), so a backward pass that is
// given the same Dropout regenerates the forward's mask.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "cuda/common/dtype.h"

namespace deepspeed::ops::cuda::transformer {

struct Dropout {
  float ratio = 0.0f;  // probability of dropping; 0: identity
  uint64_t seed = 0;
  uint64_t offset = 0;  // distinguishes the dropout sites and calls of one seed
};

// An additive mask broadcast over [batch, heads, queries, keys]: element (b, h, q, k) is
// data[b * batch_stride + h * head_stride + q * row_stride + k] (a stride of 0 broadcasts).
struct AttentionMask {
  const void* data = nullptr;  // of the activations' dtype; null: no mask
  int64_t batch_stride = 0, head_stride = 0, row_stride = 0;
};

// The largest row the kernels take: layer norm over 32768 columns, softmax over 1024 keys.
inline constexpr int64_t kMaxLayerNormColumns = 32768;
inline constexpr int64_t kMaxSoftmaxColumns = 1024;

// y = (x - mean) * rstd * gamma + beta per row; mean and rstd (fp32, one per row) are written
// when not null.
void layer_norm_forward(DType dtype, const void* x, const void* gamma, const void* beta, void* y, float* mean,
                        float* rstd, int64_t rows, int64_t cols, float eps, cudaStream_t stream);

struct LayerNormGrad {
  const void* dy = nullptr;
  // The forward's input x (with mean and rstd), or, when from_output, its output y: the
  // normalised value is then (y - beta) / gamma (DeepSpeed's normalize_invertible; gamma
  // must have no zeros) and mean is not read.
  const void* saved = nullptr;
  bool from_output = false;
  const void* gamma = nullptr;
  const void* beta = nullptr;
  const float* mean = nullptr;
  const float* rstd = nullptr;
  const void* residual_grad = nullptr;  // added to dx when not null (the residual branch)
  void* dx = nullptr;
  float* dgamma = nullptr;  // [cols], fp32
  float* dbeta = nullptr;   // [cols], fp32
  int64_t rows = 0, cols = 0;
};
// Floats of scratch layer_norm_backward needs for rows x cols.
int64_t layer_norm_backward_workspace(int64_t rows, int64_t cols);
// Deterministic: each block sums its rows' dgamma/dbeta, and a second kernel adds the blocks'
// sums in a fixed order.
void layer_norm_backward(DType dtype, const LayerNormGrad& grad, float* workspace, cudaStream_t stream);
// stochastic_transformer: the blocks add their sums straight into dgamma/dbeta (which must be
// zero) with atomics, one kernel and no workspace; the order of the additions, hence the last
// bits of dgamma/dbeta, varies from run to run.
void layer_norm_backward_stochastic(DType dtype, const LayerNormGrad& grad, cudaStream_t stream);

// probs = softmax(scores * scale + mask) over each row of keys, and, when dropped is not null,
// dropped = dropout(probs) (the dropout index is the element's index in [rows, keys]).
// scores, probs, dropped: [batch, heads, queries, keys].
void softmax_dropout_forward(DType dtype, const void* scores, const AttentionMask& mask, float scale, void* probs,
                             void* dropped, int64_t batch, int64_t heads, int64_t queries, int64_t keys,
                             const Dropout& dropout, cudaStream_t stream);
// From the gradient of dropped (or of probs when the ratio is 0) to the gradient of scores
// (before the scale): grad_scores = scale * probs * (g - sum(g * probs)), g = dropout(grad).
// grad_scores may be grad_dropped.
void softmax_dropout_backward(DType dtype, const void* grad_dropped, const void* probs, void* grad_scores,
                              float scale, int64_t rows, int64_t keys, const Dropout& dropout,
                              cudaStream_t stream);

// y = dropout(x) over n elements (the backward of a dropout is the same function of the
// gradient). y may be x.
void dropout(DType dtype, const void* x, void* y, int64_t n, const Dropout& dropout, cudaStream_t stream);
// out = residual + dropout(x + bias), bias broadcast over rows.
void bias_dropout_residual(DType dtype, const void* x, const void* bias, const void* residual, void* out,
                           int64_t rows, int64_t cols, const Dropout& dropout, cudaStream_t stream);
// out = gelu(x + bias), GELU's tanh form (DeepSpeed's and GPT-2's).
void bias_gelu_forward(DType dtype, const void* x, const void* bias, void* out, int64_t rows, int64_t cols,
                       cudaStream_t stream);
// grad_x = grad * gelu'(x + bias). grad_x may be grad.
void bias_gelu_backward(DType dtype, const void* grad, const void* x, const void* bias, void* grad_x, int64_t rows,
                        int64_t cols, cudaStream_t stream);

}  // namespace deepspeed::ops::cuda::transformer
