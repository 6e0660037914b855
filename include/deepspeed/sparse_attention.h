// DeepSpeed's sparse attention op (deepspeed.ops.sparse_attention.SparseSelfAttention):
// self-attention that computes only the blocks of the [seq, seq] score matrix a sparsity
// configuration keeps (<deepspeed/sparsity_config.h>), so that time and memory grow with the
// kept blocks rather than with seq^2. docs/sparse_attention.md.
//
//   using namespace deepspeed::ops::sparse_attention;
//   auto config = std::make_shared<BigBirdSparsityConfig>(BigBirdOptions{{.num_heads = 16, .block = 64}});
//   SparseSelfAttention attention(config, SparseSelfAttentionOptions{.max_seq_length = 16384});
//   auto context = attention->forward(q, k, v);   // [batch, heads, seq, head_dim] each
//
// Promises:
// - forward(query, key, value, rpe, key_padding_mask, attn_mask) is DeepSpeed's:
//   softmax(q k^T / sqrt(head_dim) + rpe + key padding + attention mask) v over the kept blocks
//   of the layout's first seq / block blocks (the layout is made once for max_seq_length).
//   Masks are added ("add") or, in "mul" mode, a 0 drops the element; key_padding_mask holds
//   [batch, seq] values (any shape of that many, e.g. [batch, 1, 1, seq]), attn_mask [seq, seq],
//   rpe broadcasts to [batch, heads, seq, seq]. A key given transposed ([.., head_dim, seq]) is
//   taken as DeepSpeed takes it. options.causal (ours) also drops keys after the query.
// - Gradients for query, key and value (not for rpe or the masks, as DeepSpeed).
// - CPU: fp32, block-sparse loops over the kept blocks. CUDA (the sparse_attn op, ds_report):
//   fp16 and bf16, one fused kernel for the forward and two for the backward, blocks that are
//   multiples of 16 and head_dim 32, 64 or 128. Anything else is an OpError saying what.
// - A row whose keys are all dropped gives zeros (DeepSpeed's gives NaN).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <deepspeed/sparsity_config.h>

namespace deepspeed::ops::sparse_attention {

struct SparseSelfAttentionOptions {
  std::string key_padding_mask_mode = "add";  // add | mul
  std::string attn_mask_mode = "mul";         // add | mul
  int64_t max_seq_length = 2048;              // the layout is made for this length
  bool causal = false;                        // ours: also drop keys after the query
};

namespace attention_detail {
struct TileIndex;
}  // namespace attention_detail

class SparseSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit SparseSelfAttentionImpl(std::shared_ptr<const SparsityConfig> sparsity_config,
                                   SparseSelfAttentionOptions options = {});

  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                        const torch::Tensor& rpe = {}, const torch::Tensor& key_padding_mask = {},
                        const torch::Tensor& attn_mask = {});

  const SparsityConfig& sparsity_config() const { return *sparsity_config_; }
  const SparseSelfAttentionOptions& options() const { return options_; }
  // The layout a sequence of seq_len tokens uses (DeepSpeed's get_layout): the leading corner
  // of the one made for max_seq_length. Throws DeepSpeed's error for a length that is not a
  // multiple of the block.
  SparsityLayout get_layout(int64_t seq_len) const;

  // The layout for max_seq_length, also registered as the buffer "master_layout" (int64).
  torch::Tensor master_layout;

 private:
  std::shared_ptr<const attention_detail::TileIndex> index_for(int64_t seq_len, int64_t tile, const torch::Device& device);

  std::shared_ptr<const SparsityConfig> sparsity_config_;
  SparseSelfAttentionOptions options_;
  SparsityLayout layout_;
  std::mutex cache_mutex_;
  // (seq_len, tile, device) -> the tile lists on that device.
  std::map<std::tuple<int64_t, int64_t, std::string>, std::shared_ptr<const attention_detail::TileIndex>> index_cache_;
};
TORCH_MODULE(SparseSelfAttention);

// Whether this build has the op's CUDA kernels (ds_report: sparse_attn).
bool sparse_attention_kernels_built();

// A module whose self-attention can be replaced by SparseSelfAttention. DeepSpeed replaces the
// attention of BERT and RoBERTa models it recognises by class; a C++ model says that it can be
// replaced by deriving from this.
class ReplaceableSelfAttention {
 public:
  virtual ~ReplaceableSelfAttention() = default;
  virtual int64_t num_attention_heads() const = 0;
  // Compute attention with the given layout from now on (the module builds its
  // SparseSelfAttention with the masks and causality it needs), for sequences up to max_position.
  virtual void use_sparse_self_attention(std::shared_ptr<const SparsityConfig> sparsity_config,
                                         int64_t max_position) = 0;
};

// DeepSpeed's SparseAttentionUtils, as far as they apply to a C++ model.
struct SparseAttentionUtils {
  // Every ReplaceableSelfAttention in `model` (itself included) switches to sparse attention.
  // Returns how many did; throws OpError when a module's head count is not the config's.
  static int64_t replace_model_self_attention_with_sparse_self_attention(
      torch::nn::Module& model, int64_t max_position, const std::shared_ptr<const SparsityConfig>& sparsity_config);

  struct PaddedInputs {
    int64_t pad_len = 0;
    torch::Tensor input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds;
  };
  // Pads the sequence dimension (the last of the ids, the one before last of inputs_embeds) to
  // a multiple of block_size, as DeepSpeed: ids and position ids with pad_token_id, the
  // attention mask with 0 (padding not attended), token types with 0, embeddings with
  // model_embeddings(pad ids). Undefined tensors stay undefined.
  static PaddedInputs pad_to_block_size(int64_t block_size, const torch::Tensor& input_ids,
                                        const torch::Tensor& attention_mask, const torch::Tensor& token_type_ids,
                                        const torch::Tensor& position_ids, const torch::Tensor& inputs_embeds,
                                        int64_t pad_token_id,
                                        const std::function<torch::Tensor(const torch::Tensor&)>& model_embeddings = {});
  // sequence_output [batch, seq, ...] without its last pad_len positions.
  static torch::Tensor unpad_sequence_output(int64_t pad_len, const torch::Tensor& sequence_output);
};

}  // namespace deepspeed::ops::sparse_attention
