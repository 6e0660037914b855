// Dense attention with a sparsity layout's mask: the reference the sparse attention op is
// tested against (CPU in fp64, GPU tests in fp32). Every element of a block the layout drops,
// and with `causal` every key after its query, gets -inf; a row left with nothing gives zeros.
#pragma once

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include <deepspeed/sparsity_config.h>

namespace deepspeed::testing {

// [heads, seq, seq] bool: which scores the layout keeps.
inline torch::Tensor element_mask(const ops::sparse_attention::SparsityLayout& layout, int64_t block, bool causal) {
  auto blocks = torch::empty({layout.heads(), layout.blocks(), layout.blocks()}, torch::kBool);
  auto a = blocks.accessor<bool, 3>();
  for (int64_t h = 0; h < layout.heads(); ++h) {
    for (int64_t r = 0; r < layout.blocks(); ++r) {
      for (int64_t c = 0; c < layout.blocks(); ++c) a[h][r][c] = layout.at(h, r, c) != 0;
    }
  }
  auto mask = blocks.repeat_interleave(block, 1).repeat_interleave(block, 2);
  if (causal) mask = mask.logical_and(torch::ones({mask.size(1), mask.size(2)}, torch::kBool).tril());
  return mask;
}

// softmax(q k^T / sqrt(d) + rpe + key_padding[b, None, None, :] + attn[None, None]) v over the
// kept elements. Masks are additive (undefined: none); computed in q's dtype.
inline torch::Tensor dense_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const ops::sparse_attention::SparsityLayout& layout, int64_t block,
                                     const torch::Tensor& rpe = {}, const torch::Tensor& key_padding = {},
                                     const torch::Tensor& attn = {}, bool causal = false) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (rpe.defined()) scores = scores + rpe.to(scores.dtype());
  if (key_padding.defined()) scores = scores + key_padding.to(scores.dtype()).unsqueeze(1).unsqueeze(1);
  if (attn.defined()) scores = scores + attn.to(scores.dtype());
  const auto keep = element_mask(layout, block, causal).to(q.device()).unsqueeze(0);
  scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  auto probs = torch::softmax(scores, -1);
  probs = torch::where(torch::isnan(probs), torch::zeros_like(probs), probs);
  return torch::matmul(probs, v);
}

}  // namespace deepspeed::testing
