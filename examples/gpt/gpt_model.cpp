#include "gpt_model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <deepspeed/activation_checkpointing.h>
#include <deepspeed/torch_compat.h>
#include <deepspeed/transformer.h>

namespace gpt {
namespace {

struct Preset {
  const char* name;
  GptConfig config;
};

// vocab, seq, layers, heads, d_model
const Preset kPresets[] = {
    {"tiny", {256, 64, 2, 4, 64}},
    {"124M", {50304, 1024, 12, 12, 768}},
    {"350M", {50304, 1024, 24, 16, 1024}},
    {"774M", {50304, 1024, 36, 20, 1280}},
    {"1.3B", {50304, 1024, 24, 16, 2048}},
    {"2.7B", {50304, 1024, 32, 32, 2560}},
    {"6.7B", {50304, 1024, 32, 32, 4096}},
    {"13B", {50304, 1024, 40, 40, 5120}},
    {"20B", {50304, 1024, 44, 48, 6144}},
    {"30B", {50304, 1024, 48, 56, 7168}},
};

// Causal self-attention of q, k, v: [batch, heads, seq, head_dim].
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if DS_TORCH_AT_LEAST(2, 0)
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true);
#else
  const int64_t t = q.size(-2);
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  auto mask = torch::ones({t, t}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).tril();
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v);
#endif
}

// torch::linear (at::linear): one GEMM with the bias in its epilogue. The C++ frontend's
// Linear::forward (torch::nn::functional::linear) runs a 3-D input as matmul + a separate
// broadcast add of the bias, which costs this model about 5% of its step on an H100/H200.
torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return torch::linear(x, layer->weight, layer->bias);
}
// The same GEMM; split by AutoTP, with the tensor-parallel all-reduces around it.
torch::Tensor linear(const deepspeed::tensor_parallel::Linear& layer, const torch::Tensor& x) {
  return layer.ptr()->forward(x);
}

// The transformer op's config for one GPT-2 block: pre-LN, no dropout, LayerNorm's default
// eps, GPT-2's initialisation (0.02; residual projections / sqrt(2 * layers)).
deepspeed::ops::TransformerConfig kernel_block_config(const GptConfig& c) {
  deepspeed::ops::TransformerConfig k;
  k.hidden_size = c.d_model;
  k.intermediate_size = 4 * c.d_model;
  k.heads = c.n_head;
  k.attn_dropout_ratio = 0.0f;
  k.hidden_dropout_ratio = 0.0f;
  k.num_hidden_layers = c.n_layer;
  k.initializer_range = 0.02f;
  k.layer_norm_eps = 1e-5f;
  k.pre_layer_norm = true;
  k.seed = 0;  // no dropout: the seed draws nothing
  return k;
}

}  // namespace

GptConfig preset(const std::string& name) {
  for (const auto& p : kPresets) {
    if (name == p.name) return p.config;
  }
  std::string known;
  for (const auto& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  throw std::invalid_argument("unknown GPT size \"" + name + "\" (known: " + known + ")");
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.emplace_back(p.name);
  return names;
}

namespace {

int64_t mlp_parameters(int64_t d) { return (4 * d * d + 4 * d) + (4 * d * d + d); }

int64_t moe_blocks(const GptConfig& c) { return c.moe_num_experts > 0 ? c.n_layer / 2 : 0; }

// Parameters with `experts` MLPs in each MoE block (and its gate).
int64_t parameters_with(const GptConfig& c, int64_t experts) {
  const int64_t d = c.d_model;
  const int64_t per_block = 2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + mlp_parameters(d);
  const int64_t moe_extra = moe_blocks(c) * ((experts - 1) * mlp_parameters(d) + d * c.moe_num_experts);
  return c.vocab_size * d + c.seq_len * d + c.n_layer * per_block + moe_extra + 2 * d;
}

}  // namespace

int64_t parameter_count(const GptConfig& c) { return parameters_with(c, std::max<int64_t>(c.moe_num_experts, 1)); }

double training_flops_per_token(const GptConfig& c) {
  const auto active = parameters_with(c, c.moe_num_experts > 0 ? c.moe_top_k : 1);
  const double n = static_cast<double>(active - c.seq_len * c.d_model);
  return 6.0 * n + 12.0 * static_cast<double>(c.n_layer * c.d_model * c.seq_len);
}

MlpImpl::MlpImpl(int64_t d, int64_t n_layer) {
  c_fc_ = register_module("c_fc", torch::nn::Linear(d, 4 * d));
  mlp_proj_ = register_module("mlp_proj", torch::nn::Linear(4 * d, d));
  torch::NoGradGuard no_grad;
  c_fc_->weight.normal_(0.0, 0.02);
  c_fc_->bias.zero_();
  mlp_proj_->weight.normal_(0.0, 0.02 / std::sqrt(2.0 * static_cast<double>(n_layer)));
  mlp_proj_->bias.zero_();
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  return linear(mlp_proj_, torch::gelu(linear(c_fc_, x), "tanh"));
}

BlockImpl::BlockImpl(const GptConfig& c, bool moe) : n_head_(c.n_head) {
  if (c.d_model % c.n_head != 0) {
    throw std::invalid_argument("d_model " + std::to_string(c.d_model) + " is not a multiple of n_head " +
                                std::to_string(c.n_head));
  }
  const int64_t d = c.d_model;
  ln_1_ = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  c_attn_ = register_module("c_attn", deepspeed::tensor_parallel::Linear(d, 3 * d));
  attn_proj_ = register_module("attn_proj", deepspeed::tensor_parallel::Linear(d, d));
  ln_2_ = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  if (moe) {
    deepspeed::moe::MoEOptions o;
    o.num_experts = c.moe_num_experts;
    o.ep_size = c.moe_ep_size;
    o.k = c.moe_top_k;
    const int64_t layers = c.n_layer;
    moe_ = register_module("moe", deepspeed::moe::MoE(
                                      d, [d, layers] { return torch::nn::AnyModule(Mlp(d, layers)); }, o));
  } else {
    c_fc_ = register_module("c_fc", deepspeed::tensor_parallel::Linear(d, 4 * d));
    mlp_proj_ = register_module("mlp_proj", deepspeed::tensor_parallel::Linear(4 * d, d));
  }
  torch::NoGradGuard no_grad;
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  for (auto* l : {&c_attn_, &c_fc_}) {
    if (!*l) continue;
    (*l)->weight.normal_(0.0, 0.02);
    (*l)->bias.zero_();
  }
  for (auto* l : {&attn_proj_, &mlp_proj_}) {
    if (!*l) continue;
    (*l)->weight.normal_(0.0, residual_std);
    (*l)->bias.zero_();
  }
}

torch::Tensor BlockImpl::forward(torch::Tensor x) {
  const int64_t b = x.size(0), t = x.size(1), head_dim = x.size(2) / n_head_;
  auto qkv = linear(c_attn_, ln_1_->forward(x));
  // This rank's heads: all of them, or n_head / tp when AutoTP split c_attn.
  const int64_t heads = qkv.size(-1) / (3 * head_dim);
  qkv = qkv.view({b, t, 3, heads, head_dim});
  // unbind, not three selects: autograd joins unbind's gradients with one stack, where each
  // select's backward fills a zeroed qkv-sized tensor and the three are then added (about
  // 2 GB of memory traffic per block at 1.3B, micro batch 16). The same values either way.
  const auto parts = qkv.unbind(2);
  torch::Tensor y;
  if (ulysses_) {
    // [batch, seq / sp, heads, head_dim] in and out; inside, the whole sequence for heads / sp.
    y = (*ulysses_)(parts[0], parts[1], parts[2]).reshape({b, t, heads * head_dim});
  } else {
    auto q = parts[0].transpose(1, 2);
    auto k = parts[1].transpose(1, 2);
    auto v = parts[2].transpose(1, 2);
    y = (sparse_attention_ ? sparse_attention_->forward(q, k, v) : causal_attention(q, k, v))
            .transpose(1, 2)
            .reshape({b, t, heads * head_dim});
  }
  x = x + linear(attn_proj_, y);
  if (moe_) {
    auto [out, l_aux, counts] = moe_->forward(ln_2_->forward(x));
    l_aux_ = l_aux;
    return x + out;
  }
  return x + linear(mlp_proj_, torch::gelu(linear(c_fc_, ln_2_->forward(x)), "tanh"));
}

void BlockImpl::use_sparse_self_attention(
    std::shared_ptr<const deepspeed::ops::sparse_attention::SparsityConfig> config, int64_t max_position) {
  namespace sa = deepspeed::ops::sparse_attention;
  sparse_attention_ = register_module(
      "sparse_attention",
      sa::SparseSelfAttention(std::move(config), sa::SparseSelfAttentionOptions{.max_seq_length = max_position,
                                                                                .causal = true}));
}

void BlockImpl::use_sequence_parallel(std::shared_ptr<deepspeed::comm::ProcessGroup> group) {
  if (n_head_ % group->size() != 0) {
    throw std::invalid_argument("--sequence_parallel " + std::to_string(group->size()) + " does not divide n_head " +
                                std::to_string(n_head_));
  }
  const auto local = [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return causal_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2);
  };
  ulysses_.emplace(local, std::move(group));
}

GptImpl::GptImpl(const GptConfig& c) : config_(c) {
  wte_ = register_module("wte", torch::nn::Embedding(c.vocab_size, c.d_model));
  wpe_ = register_module("wpe", torch::nn::Embedding(c.seq_len, c.d_model));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.n_layer; ++i) {
    if (c.transformer_kernel) {
      blocks_->push_back(deepspeed::ops::TransformerLayer(kernel_block_config(c)));
    } else {
      blocks_->push_back(Block(c, /*moe=*/c.moe_num_experts > 0 && i % 2 == 1));
    }
  }
  ln_f_ = register_module("ln_f", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
  if (c.sparse_attention) {
    namespace sa = deepspeed::ops::sparse_attention;
    if (c.transformer_kernel) {
      throw std::invalid_argument("sparse attention needs the model's own blocks, not the transformer op's");
    }
    sa::SparseAttentionUtils::replace_model_self_attention_with_sparse_self_attention(
        *this, c.seq_len, sa::make_sparsity_config(*c.sparse_attention, c.n_head));
  }
  torch::NoGradGuard no_grad;
  wte_->weight.normal_(0.0, 0.02);
  wpe_->weight.normal_(0.0, 0.02);
}

void GptImpl::set_activation_checkpointing(int64_t every, int64_t loss_chunks) {
  if (every < 0 || loss_chunks < 0) throw std::invalid_argument("activation checkpointing: negative setting");
  checkpoint_every_ = every;
  loss_chunks_ = loss_chunks;
}

void GptImpl::set_sequence_parallel(std::shared_ptr<deepspeed::comm::ProcessGroup> group) {
  if (config_.transformer_kernel || config_.moe_num_experts > 0 || config_.sparse_attention) {
    throw std::invalid_argument("sequence parallelism needs dense attention in the model's own blocks (not the "
                                "transformer op's, MoE blocks or sparse attention)");
  }
  for (const auto& block : *blocks_) block->as<BlockImpl>()->use_sequence_parallel(group);
  sequence_group_ = std::move(group);
}

torch::Tensor GptImpl::hidden(torch::Tensor tokens) {
  const int64_t t = tokens.size(1);
  // This rank's slice of the sequence starts at its rank's share.
  const int64_t first = sequence_group_ ? sequence_group_->rank() * t : 0;
  if (first + t > config_.seq_len) {
    throw std::invalid_argument("sequence of " + std::to_string((sequence_group_ ? sequence_group_->size() : 1) * t) +
                                " tokens is longer than seq_len " + std::to_string(config_.seq_len));
  }
  auto positions =
      torch::arange(first, first + t, torch::TensorOptions().dtype(torch::kLong).device(tokens.device()));
  auto x = wte_->forward(tokens) + wpe_->forward(positions);
  if (config_.transformer_kernel) {
    // Causal: key k > query q is masked (added -inf before the softmax).
    const auto causal = torch::full({t, t}, -std::numeric_limits<double>::infinity(), x.options()).triu(1);
    const auto mask = causal.view({1, 1, t, t});
    for (std::size_t i = 0; i < blocks_->size(); ++i) {
      auto layer = blocks_->ptr<deepspeed::ops::TransformerLayerImpl>(i);
      if (checkpoint_every_ > 0 && i % static_cast<std::size_t>(checkpoint_every_) == 0) {
        x = deepspeed::checkpointing::checkpoint(
            [layer](const torch::Tensor& h, const torch::Tensor& m) { return layer->forward(h, m); }, x, mask);
      } else {
        x = layer->forward(x, mask);
      }
    }
    return x;
  }
  for (std::size_t i = 0; i < blocks_->size(); ++i) {
    auto block = blocks_->ptr<BlockImpl>(i);
    if (checkpoint_every_ == 0 || i % static_cast<std::size_t>(checkpoint_every_) != 0) {
      x = block->forward(x);
    } else if (!block->is_moe()) {
      x = deepspeed::checkpointing::checkpoint(block, x);
    } else {
      // l_aux leaves through the checkpoint beside the block's output, so that its gradient
      // reaches the blocks before this one, as without checkpointing.
      auto [out, l_aux] = deepspeed::checkpointing::checkpoint(
          [block](const torch::Tensor& h) {
            auto y = block->forward(h);
            return std::make_tuple(y, block->l_aux());
          },
          x);
      block->set_l_aux(l_aux);
      x = out;
    }
  }
  return x;
}

torch::Tensor GptImpl::logits(torch::Tensor tokens) {
  return torch::linear(ln_f_->forward(hidden(tokens)), wte_->weight);  // tied output projection
}

torch::Tensor GptImpl::forward(torch::Tensor tokens, torch::Tensor targets) {
  torch::Tensor loss;
  if (checkpoint_every_ == 0 || loss_chunks_ <= 1) {
    auto out = logits(tokens);
    loss = torch::nn::functional::cross_entropy(out.reshape({-1, out.size(-1)}).to(torch::kFloat32),
                                                targets.reshape({-1}));
  } else {
    // The output layer's logits (and their fp32 copy and log-probabilities) are the largest
    // activations once the blocks are checkpointed: computed a slice of tokens at a time, and
    // again in backward, only one slice's are ever alive.
    auto x = hidden(tokens);
    x = x.reshape({-1, x.size(-1)});
    const auto flat_targets = targets.reshape({-1});
    const int64_t n = x.size(0), chunk = (n + loss_chunks_ - 1) / loss_chunks_;
    torch::Tensor total;
    for (int64_t start = 0; start < n; start += chunk) {
      const int64_t len = std::min(chunk, n - start);
      auto part = deepspeed::checkpointing::checkpoint(
          [this](const torch::Tensor& h, const torch::Tensor& y) {
            auto out = torch::linear(ln_f_->forward(h), wte_->weight);
            return torch::nn::functional::cross_entropy(
                out.to(torch::kFloat32), y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
          },
          x.narrow(0, start, len), flat_targets.narrow(0, start, len));
      total = total.defined() ? total + part : part;
    }
    loss = total / static_cast<double>(n);
  }
  if (config_.moe_num_experts > 0 && !config_.transformer_kernel) {
    for (const auto& block : *blocks_) {
      const auto& l_aux = block->as<BlockImpl>()->l_aux();
      if (l_aux.defined()) loss = loss + config_.moe_loss_coeff * l_aux;
    }
  }
  return loss;
}

}  // namespace gpt
