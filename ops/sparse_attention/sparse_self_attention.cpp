// SparseSelfAttention: checks its inputs as DeepSpeed's forward does, turns the masks into
// additive fp32, and runs the block-sparse attention on the layout of the sequence's length.
#include <cmath>
#include <limits>
#include <sstream>

#include <deepspeed/errors.h>
#include <deepspeed/sparse_attention.h>

#include "sparse_attention/block_sparse_attention.h"

namespace deepspeed::ops::sparse_attention {

using attention_detail::Masks;
using attention_detail::TileIndex;

namespace {

[[noreturn]] void fail(const std::string& message) { throw OpError("SparseSelfAttention: " + message); }

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

void check_mode(const std::string& mode, const char* name) {
  if (mode != "add" && mode != "mul") fail(std::string(name) + " must be \"add\" or \"mul\", got \"" + mode + "\"");
}

// "mul": 0 drops the element (-inf), anything else keeps it; "add": the values themselves.
torch::Tensor additive(const torch::Tensor& mask, const std::string& mode) {
  auto m = mask.to(torch::kFloat);
  if (mode == "mul") {
    m = torch::where(m == 0, torch::full({}, -std::numeric_limits<float>::infinity(), m.options()),
                     torch::zeros({}, m.options()));
  }
  return m.contiguous();
}

SparsityLayout master_of(const SparsityConfig& config, int64_t max_seq_length) {
  if (max_seq_length < 1) fail("max_seq_length must be at least 1, got " + std::to_string(max_seq_length));
  return config.make_layout(max_seq_length);
}

torch::Tensor layout_tensor(const SparsityLayout& layout) {
  auto t = torch::empty({layout.heads(), layout.blocks(), layout.blocks()}, torch::kLong);
  auto a = t.accessor<int64_t, 3>();
  for (int64_t h = 0; h < layout.heads(); ++h) {
    for (int64_t r = 0; r < layout.blocks(); ++r) {
      for (int64_t c = 0; c < layout.blocks(); ++c) a[h][r][c] = layout.at(h, r, c);
    }
  }
  return t;
}

// The tile the CUDA kernels use for a block: the largest of 64, 32, 16 that divides it (0: none).
int64_t cuda_tile(int64_t block) {
  for (int64_t t : {64, 32, 16}) {
    if (block % t == 0) return t;
  }
  return 0;
}

}  // namespace

SparseSelfAttentionImpl::SparseSelfAttentionImpl(std::shared_ptr<const SparsityConfig> sparsity_config,
                                                 SparseSelfAttentionOptions options)
    : sparsity_config_(sparsity_config ? std::move(sparsity_config) : throw OpError("SparseSelfAttention: no sparsity config")),
      options_(std::move(options)),
      layout_(master_of(*sparsity_config_, options_.max_seq_length)) {
  check_mode(options_.key_padding_mask_mode, "key_padding_mask_mode");
  check_mode(options_.attn_mask_mode, "attn_mask_mode");
  master_layout = register_buffer("master_layout", layout_tensor(layout_));
}

SparsityLayout SparseSelfAttentionImpl::get_layout(int64_t seq_len) const {
  const int64_t block = sparsity_config_->block();
  if (seq_len % block != 0) {
    fail("Sequence Length, " + std::to_string(seq_len) + ", needs to be dividable by Block size " +
         std::to_string(block) + "!");
  }
  if (seq_len > options_.max_seq_length) {
    fail("sequence length " + std::to_string(seq_len) + " is longer than max_seq_length " +
         std::to_string(options_.max_seq_length) + " (the layout was made for that length)");
  }
  return layout_.leading(seq_len / block);
}

std::shared_ptr<const TileIndex> SparseSelfAttentionImpl::index_for(int64_t seq_len, int64_t tile,
                                                                     const torch::Device& device) {
  const std::lock_guard<std::mutex> lock(cache_mutex_);
  auto key = std::make_tuple(seq_len, tile, device.str());
  auto it = index_cache_.find(key);
  if (it == index_cache_.end()) {
    auto index = std::make_shared<const TileIndex>(attention_detail::make_tile_index(
        get_layout(seq_len), sparsity_config_->block(), tile, options_.causal, device));
    it = index_cache_.emplace(std::move(key), std::move(index)).first;
  }
  return it->second;
}

torch::Tensor SparseSelfAttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& key_in,
                                               const torch::Tensor& value, const torch::Tensor& rpe,
                                               const torch::Tensor& key_padding_mask, const torch::Tensor& attn_mask) {
  if (!query.defined() || !key_in.defined() || !value.defined()) fail("query, key and value must all be given");
  if (query.dim() != 4) fail("query must be [batch, heads, seq, head_dim], got " + shape_text(query));
  const int64_t batch = query.size(0), heads = query.size(1), seq = query.size(2), dim = query.size(3);
  // A key given as [batch, heads, head_dim, seq] (already transposed for q k^T), as DeepSpeed accepts.
  torch::Tensor key = key_in;
  if (key.dim() == 4 && key.size(2) != seq) key = key.transpose(2, 3);
  if (query.sizes() != key.sizes() || key.sizes() != value.sizes()) {
    fail("only self-attention is supported for now: query " + shape_text(query) + ", key " + shape_text(key_in) +
         " and value " + shape_text(value) + " must have one shape");
  }
  if (heads != sparsity_config_->num_heads()) {
    fail("query has " + std::to_string(heads) + " heads, the sparsity config " +
         std::to_string(sparsity_config_->num_heads()));
  }
  if (key.scalar_type() != query.scalar_type() || value.scalar_type() != query.scalar_type() ||
      key.device() != query.device() || value.device() != query.device()) {
    fail("query, key and value must have one dtype and device");
  }
  const int64_t block = sparsity_config_->block();
  int64_t tile = block;
  if (query.is_cuda()) {
    if (query.scalar_type() != torch::kHalf && query.scalar_type() != torch::kBFloat16) {
      fail("on CUDA the kernels take fp16 and bf16, got " + std::string(c10::toString(query.scalar_type())));
    }
    if (!attention_detail::cuda_kernels_built()) {
      fail("this build has no sparse_attn CUDA kernels (ds_report says why)");
    }
    tile = cuda_tile(block);
    if (!attention_detail::cuda_kernels_take(dim, tile)) {
      fail("the CUDA kernels take head_dim 32, 64 or 128 and blocks that are multiples of 16; got head_dim " +
           std::to_string(dim) + " and block " + std::to_string(block));
    }
  } else if (query.scalar_type() != torch::kFloat) {
    fail("on the CPU the op computes in fp32, got " + std::string(c10::toString(query.scalar_type())));
  }
  const auto index = index_for(seq, tile, query.device());

  Masks masks;
  const auto fopts = query.options().dtype(torch::kFloat);
  if (rpe.defined()) {
    if (rpe.dim() > 4) fail("rpe must broadcast to [batch, heads, seq, seq], got " + shape_text(rpe));
    try {
      masks.rpe = rpe.to(fopts).expand({batch, heads, seq, seq});
    } catch (const c10::Error&) {
      fail("rpe must broadcast to [batch, heads, seq, seq], got " + shape_text(rpe));
    }
    if (masks.rpe.stride(3) != 1) masks.rpe = masks.rpe.contiguous();
  }
  if (key_padding_mask.defined()) {
    if (key_padding_mask.numel() != batch * seq || key_padding_mask.size(-1) != seq) {
      fail("key_padding_mask must hold [batch, seq] = [" + std::to_string(batch) + ", " + std::to_string(seq) +
           "] values, got " + shape_text(key_padding_mask));
    }
    masks.key_padding = additive(key_padding_mask.to(query.device()).reshape({batch, seq}), options_.key_padding_mask_mode);
  }
  if (attn_mask.defined()) {
    if (attn_mask.numel() != seq * seq || attn_mask.size(-1) != seq) {
      fail("attn_mask must be [seq, seq] = [" + std::to_string(seq) + ", " + std::to_string(seq) + "], got " +
           shape_text(attn_mask));
    }
    masks.attn = additive(attn_mask.to(query.device()).reshape({seq, seq}), options_.attn_mask_mode);
  }
  const attention_detail::Problem problem{1.0 / std::sqrt(static_cast<double>(dim)), options_.causal};
  return attention_detail::block_sparse_attention(query.contiguous(), key.contiguous(), value.contiguous(), *index,
                                                  masks, problem);
}

bool sparse_attention_kernels_built() { return attention_detail::cuda_kernels_built(); }

}  // namespace deepspeed::ops::sparse_attention
