// The sparse attention op's CUDA kernels (docs/sparse_attention.md): block-sparse
// self-attention as one fused FlashAttention-style forward and a two-kernel backward, over raw
// device pointers on a given stream; ops/sparse_attention/cuda_block_sparse_attention.cpp is
// the LibTorch side.
//
// The layout arrives as lists at the granularity of a tile (the layout's block, or 64 for
// blocks of 128): for each head, the column tiles each row tile computes (rows) and the row
// tiles each column tile is computed by (columns). Only listed tiles are read or computed, so
// time and memory follow the kept blocks; the backward recomputes the probabilities from the
// row log-sum-exp the forward saves. q, k, v, out and their gradients are [batch, heads, seq,
// head_dim] contiguous, fp16 or bf16, computed on tensor cores with fp32 accumulation and an fp32
// softmax. Masks are additive fp32 (a -inf drops the element); a row with nothing left gets a
// zero output and zero gradients.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "cuda/common/dtype.h"

namespace deepspeed::ops::cuda::sparse_attn {

// Tile lists of one layout: offsets [heads][tiles + 1] into indices (int32, device memory).
struct TileLists {
  const int32_t* offsets = nullptr;
  const int32_t* indices = nullptr;
};

// Additive fp32 masks, each optional (null): element (b, h, q, k) of rpe is
// rpe[b * rpe_batch_stride + h * rpe_head_stride + q * rpe_row_stride + k]; key_padding is
// [batch][seq] with row stride key_padding_stride; attn is [seq][seq] with row stride attn_stride.
struct AdditiveMasks {
  const float* rpe = nullptr;
  int64_t rpe_batch_stride = 0, rpe_head_stride = 0, rpe_row_stride = 0;
  const float* key_padding = nullptr;
  int64_t key_padding_stride = 0;
  const float* attn = nullptr;
  int64_t attn_stride = 0;
};

struct AttentionShape {
  int64_t batch = 0, heads = 0, seq = 0, head_dim = 0;
  int tile = 64;        // 16, 32 or 64: seq must be a multiple
  float scale = 1.0f;   // applied to q k^T before the masks
  bool causal = false;  // also drop keys after the query (inside the listed tiles)
};

// Whether the kernels take this head_dim and tile (head_dim 32, 64 or 128; tile 16, 32, 64).
bool supported(int64_t head_dim, int tile);

// out = softmax(q k^T * scale + masks over the listed tiles) v; lse [batch, heads, seq] fp32 is
// the row's log-sum-exp (+inf for a row with nothing kept).
void forward(DType dtype, const AttentionShape& shape, const TileLists& rows, const AdditiveMasks& masks,
             const void* q, const void* k, const void* v, void* out, float* lse, cudaStream_t stream);

// dq, dk, dv from dout and the forward's out and lse. delta is fp32 workspace of
// [batch, heads, seq] (it receives rowsum(dout * out)).
void backward(DType dtype, const AttentionShape& shape, const TileLists& rows, const TileLists& columns,
              const AdditiveMasks& masks, const void* q, const void* k, const void* v, const void* out,
              const void* dout, const float* lse, float* delta, void* dq, void* dk, void* dv, cudaStream_t stream);

}  // namespace deepspeed::ops::cuda::sparse_attn
