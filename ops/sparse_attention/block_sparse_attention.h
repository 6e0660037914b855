// The sparse attention op's computation below the module (sparse_self_attention.cpp): the
// layout as tile lists, the masks as additive fp32, and forward / backward on the CPU
// (cpu_block_sparse_attention.cpp) or with the CUDA kernels (cuda_block_sparse_attention.cpp),
// joined into one autograd node (block_sparse_attention_function.cpp).
#pragma once

#include <array>
#include <cstdint>

#include <torch/types.h>

#include <deepspeed/sparsity_config.h>

namespace deepspeed::ops::sparse_attention::attention_detail {

// The layout of one sequence length at the granularity of a tile (a divisor of the block):
// per head, the column tiles of each row tile (row_offsets [heads, tiles + 1] into
// row_indices) and the row tiles of each column tile (col_offsets, col_indices); int32, on
// the device of the tensors it serves. With causal, tiles above the diagonal are left out.
struct TileIndex {
  int64_t tile = 0;
  int64_t tiles = 0;  // per side
  torch::Tensor row_offsets, row_indices, col_offsets, col_indices;
};
TileIndex make_tile_index(const SparsityLayout& layout, int64_t block, int64_t tile, bool causal,
                          const torch::Device& device);

// Additive fp32 masks, each undefined or: rpe [batch, heads, seq, seq] (broadcast dimensions
// of stride 0, the last contiguous), key_padding [batch, seq], attn [seq, seq] (contiguous).
struct Masks {
  torch::Tensor rpe, key_padding, attn;
};

struct Problem {
  double scale = 1.0;
  bool causal = false;
};

struct ForwardResult {
  torch::Tensor out;  // like q
  torch::Tensor lse;  // [batch, heads, seq] fp32; +inf for a row with nothing kept
};

// q, k, v: [batch, heads, seq, head_dim] contiguous fp32 CPU tensors.
ForwardResult cpu_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const TileIndex& index, const Masks& masks, const Problem& problem);
std::array<torch::Tensor, 3> cpu_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                          const torch::Tensor& out, const torch::Tensor& lse,
                                          const torch::Tensor& dout, const TileIndex& index, const Masks& masks,
                                          const Problem& problem);

// The same on CUDA fp16/bf16 tensors with the op's kernels; cuda_kernels_take() says whether they
// take this head_dim and tile (and whether this build has them at all).
bool cuda_kernels_built();
bool cuda_kernels_take(int64_t head_dim, int64_t tile);
ForwardResult cuda_forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const TileIndex& index, const Masks& masks, const Problem& problem);
std::array<torch::Tensor, 3> cuda_backward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           const torch::Tensor& out, const torch::Tensor& lse,
                                           const torch::Tensor& dout, const TileIndex& index, const Masks& masks,
                                           const Problem& problem);

// The attention as one autograd node (gradients for q, k and v).
torch::Tensor block_sparse_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const TileIndex& index, const Masks& masks, const Problem& problem);

}  // namespace deepspeed::ops::sparse_attention::attention_detail
