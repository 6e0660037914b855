// The builtin injection policies and the matching of a model's parameters against them.
#include "inference/decoder_policy.h"

#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <deepspeed/errors.h>

namespace deepspeed::inference {
namespace {

namespace ti = ops::transformer_inference;

DecoderPolicy gpt2_policy() {
  DecoderPolicy p;
  p.name = "gpt2";
  p.embedding = "wte";
  p.position_embedding = "wpe";
  p.final_norm = "ln_f";
  p.blocks = "blocks";
  p.qkv = {"c_attn"};
  p.attention_out = "attn_proj";
  p.norm_1 = "ln_1";
  p.norm_2 = "ln_2";
  p.mlp_in = {"c_fc"};
  p.mlp_out = "mlp_proj";
  return p;
}

DecoderPolicy llama_policy() {
  DecoderPolicy p;
  p.name = "llama";
  p.embedding = "embed_tokens";
  p.final_norm = "norm";
  p.lm_head = "lm_head";
  p.blocks = "layers";
  p.qkv = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"};
  p.attention_out = "self_attn.o_proj";
  p.norm_1 = "input_layernorm";
  p.norm_2 = "post_attention_layernorm";
  p.mlp_in = {"mlp.gate_proj", "mlp.up_proj"};
  p.mlp_out = "mlp.down_proj";
  p.biases = false;
  p.norm = ti::NormKind::RMSNorm;
  p.activation = ti::Activation::GatedSilu;
  p.default_eps = 1e-6;
  return p;
}

std::string shape_of(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

// The parameters one policy needs, by their full names, and where each goes.
class Matcher {
 public:
  Matcher(const DecoderPolicy& policy, std::string prefix,
          const std::vector<std::pair<std::string, torch::Tensor>>& params)
      : policy_(policy), prefix_(std::move(prefix)) {
    for (const auto& [name, value] : params) {
      model_.emplace(name, value);
      order_.push_back(name);
    }
  }

  // The number of blocks: the largest <prefix><blocks>.<i>. + 1.
  int64_t count_blocks() const {
    const std::string head = prefix_ + policy_.blocks + ".";
    int64_t n = 0;
    for (const auto& name : order_) {
      if (name.rfind(head, 0) != 0) continue;
      const auto rest = name.substr(head.size());
      const auto dot = rest.find('.');
      if (dot == std::string::npos || dot == 0) continue;
      const auto index = rest.substr(0, dot);
      if (index.find_first_not_of("0123456789") != std::string::npos) continue;
      n = std::max<int64_t>(n, std::stoll(index) + 1);
    }
    return n;
  }

  // The tensor of the full name `name`, checked against `shape` (-1: any), marked as used.
  torch::Tensor take(const std::string& name, std::vector<int64_t> shape) {
    auto it = model_.find(name);
    if (it == model_.end()) {
      throw EngineError(fmt::format("kernel injection ({} policy): the model has no parameter \"{}\"", policy_.name, name));
    }
    const auto& t = it->second;
    bool fits = t.dim() == static_cast<int64_t>(shape.size());
    for (size_t i = 0; fits && i < shape.size(); ++i) fits = shape[i] < 0 || shape[i] == t.size(static_cast<int64_t>(i));
    if (!fits) {
      throw EngineError(fmt::format("kernel injection ({} policy): parameter \"{}\" has shape {}, expected [{}] (-1: any)",
                                    policy_.name, name, shape_of(t), fmt::join(shape, ", ")));
    }
    used_.insert(name);
    return t;
  }
  torch::Tensor take_optional(const std::string& name, std::vector<int64_t> shape) {
    return model_.count(name) ? take(name, std::move(shape)) : torch::Tensor();
  }
  const std::string& prefix() const { return prefix_; }

  // Every parameter must have been taken: the first one that was not does not fit.
  void check_all_used() const {
    for (const auto& name : order_) {
      if (!used_.count(name)) {
        throw EngineError(fmt::format("kernel injection ({} policy): parameter \"{}\" does not fit the policy (a "
                                      "{}-style decoder; docs/inference.md lists what it takes)",
                                      policy_.name, name, policy_.name));
      }
    }
  }

 private:
  const DecoderPolicy& policy_;
  std::string prefix_;
  std::map<std::string, torch::Tensor> model_;
  std::vector<std::string> order_;
  std::set<std::string> used_;
};

// Every parameter name the policy takes from a model of `layers` blocks under `prefix`.
std::set<std::string> expected_names(const DecoderPolicy& p, const std::string& prefix, int64_t layers) {
  std::set<std::string> names;
  const bool layer_norm = p.norm == ti::NormKind::LayerNorm;
  auto norm = [&](const std::string& module) {
    names.insert(module + ".weight");
    if (layer_norm) names.insert(module + ".bias");
  };
  auto linear = [&](const std::string& module) {
    names.insert(module + ".weight");
    if (p.biases) names.insert(module + ".bias");
  };
  names.insert(prefix + p.embedding + ".weight");
  if (!p.position_embedding.empty()) names.insert(prefix + p.position_embedding + ".weight");
  norm(prefix + p.final_norm);
  if (!p.lm_head.empty()) {
    names.insert(p.lm_head + ".weight");
    names.insert(prefix + p.lm_head + ".weight");
  }
  for (int64_t i = 0; i < layers; ++i) {
    const std::string b = fmt::format("{}{}.{}.", prefix, p.blocks, i);
    norm(b + p.norm_1);
    norm(b + p.norm_2);
    for (const auto& part : p.qkv) linear(b + part);
    linear(b + p.attention_out);
    for (const auto& part : p.mlp_in) linear(b + part);
    linear(b + p.mlp_out);
  }
  return names;
}

}  // namespace

const std::vector<DecoderPolicy>& builtin_policies() {
  static const std::vector<DecoderPolicy> policies = {gpt2_policy(), llama_policy()};
  return policies;
}

MatchedModel match_policy(const std::vector<std::pair<std::string, torch::Tensor>>& params, int64_t heads,
                          std::optional<double> eps, double rope_theta, const PrepareParameter& prepare) {
  if (params.empty()) throw EngineError("kernel injection: the model has no parameters");
  // The policy whose embedding the model has, and the prefix it sits under.
  const DecoderPolicy* policy = nullptr;
  std::string prefix;
  for (const auto& p : builtin_policies()) {
    const std::string suffix = p.embedding + ".weight";
    for (const auto& [name, value] : params) {
      if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
          (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.')) {
        policy = &p;
        prefix = name.substr(0, name.size() - suffix.size());
        break;
      }
    }
    if (policy) break;
  }
  if (!policy) {
    std::vector<std::string> expected;
    for (const auto& p : builtin_policies()) expected.push_back(fmt::format("{} ({}.weight)", p.name, p.embedding));
    throw EngineError(fmt::format("kernel injection: no policy recognises the model: its parameter \"{}\" fits none "
                                  "of {} (docs/inference.md)",
                                  params.front().first, fmt::join(expected, ", ")));
  }
  if (heads <= 0) {
    throw ConfigError("config.num_attention_heads",
                      "required: the number of attention heads (the model's parameters do not say it)");
  }

  // The first parameter that is not one of the policy's is the one to name.
  {
    Matcher names(*policy, prefix, params);
    const auto expected = expected_names(*policy, prefix, names.count_blocks());
    for (const auto& [name, value] : params) {
      if (!expected.count(name)) {
        throw EngineError(fmt::format("kernel injection ({} policy): parameter \"{}\" does not fit the policy (a "
                                      "{}-style decoder; docs/inference.md lists the names it takes)",
                                      policy->name, name, policy->name));
      }
    }
  }
  Matcher m(*policy, prefix, params);
  MatchedModel out;
  out.policy = policy->name;
  auto& s = out.shape;
  auto& w = out.weights;
  const auto full = [&](const std::string& n) { return prefix + n; };
  auto prepared = [&](const std::string& name, std::vector<int64_t> shape) {
    auto t = m.take(name, std::move(shape));
    return prepare(name, t);
  };

  const auto embedding_raw = m.take(full(policy->embedding + ".weight"), {-1, -1});
  s.vocab = embedding_raw.size(0);
  s.d_model = embedding_raw.size(1);
  s.heads = heads;
  if (s.d_model % heads != 0) {
    throw ConfigError("config.num_attention_heads",
                      fmt::format("{} heads do not divide the model width {}", heads, s.d_model));
  }
  s.head_dim = s.d_model / heads;
  s.norm = policy->norm;
  s.activation = policy->activation;
  s.eps = eps.value_or(policy->default_eps);
  w.embedding = prepare(full(policy->embedding + ".weight"), embedding_raw);
  if (!policy->position_embedding.empty()) {
    const auto pos = m.take(full(policy->position_embedding + ".weight"), {-1, s.d_model});
    s.max_positions = pos.size(0);
    w.position_embedding = prepare(full(policy->position_embedding + ".weight"), pos);
  } else {
    s.rope_theta = rope_theta;
    if (s.head_dim % 2 != 0) throw EngineError("kernel injection: rotary positions need an even head size");
  }
  const bool layer_norm = policy->norm == ti::NormKind::LayerNorm;
  w.final_norm_w = prepared(full(policy->final_norm + ".weight"), {s.d_model});
  if (layer_norm) w.final_norm_b = prepared(full(policy->final_norm + ".bias"), {s.d_model});
  if (!policy->lm_head.empty()) {
    // Hugging Face keeps lm_head beside the prefixed decoder ("model.").
    const std::string head = m.take_optional(policy->lm_head + ".weight", {s.vocab, s.d_model}).defined()
                                 ? policy->lm_head + ".weight"
                                 : full(policy->lm_head + ".weight");
    w.lm_head = prepare(head, m.take(head, {s.vocab, s.d_model}));
  } else {
    w.lm_head = w.embedding;
  }

  s.layers = m.count_blocks();
  if (s.layers == 0) {
    throw EngineError(fmt::format("kernel injection ({} policy): the model has no blocks ({}{}.0.*)", policy->name,
                                  prefix, policy->blocks));
  }
  const bool fused_qkv = policy->qkv.size() == 1;
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string b = fmt::format("{}{}.{}.", prefix, policy->blocks, i);
    BlockWeights blk;
    blk.norm_1_w = prepared(b + policy->norm_1 + ".weight", {s.d_model});
    blk.norm_2_w = prepared(b + policy->norm_2 + ".weight", {s.d_model});
    if (layer_norm) {
      blk.norm_1_b = prepared(b + policy->norm_1 + ".bias", {s.d_model});
      blk.norm_2_b = prepared(b + policy->norm_2 + ".bias", {s.d_model});
    }
    const int64_t part_rows = fused_qkv ? 3 * s.d_model : s.d_model;
    std::vector<torch::Tensor> qkv_w, qkv_b;
    for (const auto& part : policy->qkv) {
      qkv_w.push_back(prepared(b + part + ".weight", {part_rows, s.d_model}));
      if (policy->biases) qkv_b.push_back(prepared(b + part + ".bias", {part_rows}));
    }
    // A fused q/k/v is used as it is; separate ones are concatenated once (a copy).
    blk.qkv_w = fused_qkv ? qkv_w[0] : torch::cat(qkv_w, 0);
    if (policy->biases) blk.qkv_b = fused_qkv ? qkv_b[0] : torch::cat(qkv_b, 0);
    blk.out_w = prepared(b + policy->attention_out + ".weight", {s.d_model, s.d_model});
    if (policy->biases) blk.out_b = prepared(b + policy->attention_out + ".bias", {s.d_model});
    std::vector<torch::Tensor> in_w, in_b;
    for (const auto& part : policy->mlp_in) {
      const auto& raw = m.take(b + part + ".weight", {-1, s.d_model});
      if (s.ffn == 0) s.ffn = raw.size(0);
      if (raw.size(0) != s.ffn) {
        throw EngineError(fmt::format("kernel injection ({} policy): parameter \"{}\" has {} rows, the other MLP "
                                      "inputs {}",
                                      policy->name, b + part + ".weight", raw.size(0), s.ffn));
      }
      in_w.push_back(prepare(b + part + ".weight", raw));
      if (policy->biases) in_b.push_back(prepared(b + part + ".bias", {s.ffn}));
    }
    blk.mlp_in_w = in_w.size() == 1 ? in_w[0] : torch::cat(in_w, 0);
    if (policy->biases) blk.mlp_in_b = in_b.size() == 1 ? in_b[0] : torch::cat(in_b, 0);
    blk.mlp_out_w = prepared(b + policy->mlp_out + ".weight", {s.d_model, s.ffn});
    if (policy->biases) blk.mlp_out_b = prepared(b + policy->mlp_out + ".bias", {s.d_model});
    w.blocks.push_back(std::move(blk));
  }
  m.check_all_used();
  return out;
}

}  // namespace deepspeed::inference
