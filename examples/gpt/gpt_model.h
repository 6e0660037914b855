// A GPT-2-style decoder for benchmarks and examples: learned position embeddings,
// pre-LayerNorm blocks, a GELU (tanh) MLP of width 4d, causal self-attention through
// LibTorch's fused scaled_dot_product_attention (LibTorch 2.x; an explicit masked softmax
// on 1.13) or, with GptConfig::transformer_kernel, blocks of the transformer op, and the
// output projection tied to the token embedding. GPT-2's initialisation
// (normal 0.02; residual projections scaled by 1/sqrt(2·layers)). The same model is written in
// Python in bench/peers/gpt_peer.py, so that both sides train identical networks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include <deepspeed/comm.h>
#include <deepspeed/config.h>
#include <deepspeed/moe.h>
#include <deepspeed/sparse_attention.h>
#include <deepspeed/sequence.h>
#include <deepspeed/tensor_parallel.h>

namespace gpt {

struct GptConfig {
  int64_t vocab_size = 50304;  // GPT-2's 50257, padded to a multiple of 64
  int64_t seq_len = 1024;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t d_model = 768;
  // Build the blocks from the transformer op (deepspeed/transformer.h: one autograd node per
  // block, fused kernels, explicit masked softmax) instead of Block. The same function with
  // DeepSpeed's parameter names; its initialisation draws in another order.
  bool transformer_kernel = false;
  // Mixture of Experts (deepspeed/moe.h) in every other block (the second, fourth, ...), as
  // DeepSpeed's MoE GPT examples: the MLP becomes moe_num_experts MLPs of which each token
  // takes moe_top_k, split over moe_ep_size ranks; the loss adds moe_loss_coeff x l_aux.
  // 0 experts: a dense model.
  int64_t moe_num_experts = 0;
  int64_t moe_ep_size = 1;
  int64_t moe_top_k = 1;
  double moe_loss_coeff = 0.01;
  // Block-sparse causal attention (deepspeed/sparse_attention.h) with this layout in every
  // block instead of dense attention; seq_len must be a multiple of its block.
  std::optional<deepspeed::SparseAttentionConfig> sparse_attention = std::nullopt;
};

// Named sizes: "124M", "350M", "774M", "1.3B", "2.7B", "6.7B", "13B", "20B", "30B", and "tiny"
// (for tests). Throws std::invalid_argument naming the known sizes for any other name.
GptConfig preset(const std::string& name);
std::vector<std::string> preset_names();

// Parameters of the model (the output projection is tied, so it adds none), and those the
// FLOP count uses (all but the position embedding, as nanoGPT counts).
int64_t parameter_count(const GptConfig& c);
// Training FLOPs per token: 6·N + 12·layers·d·seq_len (forward and backward, attention included),
// N counting the experts a token runs through (top-k of them), not all of them.
double training_flops_per_token(const GptConfig& c);

// The MLP of a block (and an expert of an MoE block): d -> 4d -> GELU (tanh) -> d.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t d, int64_t n_layer);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::Linear c_fc_{nullptr}, mlp_proj_{nullptr};
};
TORCH_MODULE(Mlp);

// A block's attention can be switched to sparse attention
// (SparseAttentionUtils::replace_model_self_attention_with_sparse_self_attention).
class BlockImpl : public torch::nn::Module, public deepspeed::ops::sparse_attention::ReplaceableSelfAttention {
 public:
  // `moe`: the MLP is a Mixture of Experts (GptConfig's moe_* fields).
  BlockImpl(const GptConfig& c, bool moe = false);
  torch::Tensor forward(torch::Tensor x);
  int64_t num_attention_heads() const override { return n_head_; }
  // Causal block-sparse attention from now on.
  void use_sparse_self_attention(std::shared_ptr<const deepspeed::ops::sparse_attention::SparsityConfig> config,
                                 int64_t max_position) override;
  // Ulysses from now on: the block sees its rank's slice of the sequence, and its attention runs
  // through DistributedAttention over `group` (n_head must be divisible by the group's size).
  void use_sequence_parallel(std::shared_ptr<deepspeed::comm::ProcessGroup> group);
  // The MoE layer's load-balancing loss from the last forward (undefined for a dense block).
  const torch::Tensor& l_aux() const { return l_aux_; }
  bool is_moe() const { return !moe_.is_empty(); }
  // A checkpointed MoE block's l_aux comes out of the checkpoint (GptImpl::hidden).
  void set_l_aux(torch::Tensor l_aux) { l_aux_ = std::move(l_aux); }

 private:
  int64_t n_head_;
  torch::nn::LayerNorm ln_1_{nullptr}, ln_2_{nullptr};
  // AutoTP can split these ("tensor_parallel": {"autotp_size": N}): c_attn and c_fc column-parallel
  // (c_attn's q, k and v each on its own), attn_proj and mlp_proj row-parallel.
  deepspeed::tensor_parallel::Linear c_attn_{nullptr}, attn_proj_{nullptr}, c_fc_{nullptr}, mlp_proj_{nullptr};
  deepspeed::moe::MoE moe_{nullptr};
  deepspeed::ops::sparse_attention::SparseSelfAttention sparse_attention_{nullptr};
  std::optional<deepspeed::sequence::DistributedAttention> ulysses_;
  torch::Tensor l_aux_;
};
TORCH_MODULE(Block);

class GptImpl : public torch::nn::Module {
 public:
  explicit GptImpl(const GptConfig& c);
  // tokens, targets: [batch, seq] int64. Returns the mean cross-entropy loss, computed in fp32.
  torch::Tensor forward(torch::Tensor tokens, torch::Tensor targets);
  // The logits [batch, seq, vocab] in the model's dtype.
  torch::Tensor logits(torch::Tensor tokens);
  const GptConfig& config() const { return config_; }

  // Activation checkpointing (deepspeed::checkpointing): every `every`-th block is
  // checkpointed (1: all, 0: none), and while any is, forward() computes the output layer and
  // the loss in `loss_chunks` checkpointed slices of the tokens (0 or 1: in one piece), so
  // that the fp32 logits of the whole batch are never alive at once.
  void set_activation_checkpointing(int64_t every, int64_t loss_chunks);

  // Ulysses sequence parallelism over `group` (the engine's groups()->sequence_parallel()):
  // forward() then takes this rank's slice of each sequence (tokens and targets [batch,
  // seq / group size], the slices in rank order), places it at its positions, runs every
  // block's attention through DistributedAttention and returns the mean loss over the rank's own
  // tokens. Not with the transformer op's blocks, MoE blocks or sparse attention.
  void set_sequence_parallel(std::shared_ptr<deepspeed::comm::ProcessGroup> group);

 private:
  torch::Tensor hidden(torch::Tensor tokens);
  GptConfig config_;
  int64_t checkpoint_every_ = 0;
  int64_t loss_chunks_ = 0;
  std::shared_ptr<deepspeed::comm::ProcessGroup> sequence_group_;
  torch::nn::Embedding wte_{nullptr}, wpe_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm ln_f_{nullptr};
};
TORCH_MODULE(Gpt);

}  // namespace gpt
