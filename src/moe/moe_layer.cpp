// DeepSpeed's MoE layer (deepspeed/moe/layer.py, sharded_moe.py's MOELayer, experts.py): the
// gate's routes become slots of an [E, capacity, M] buffer (a gather, route_dispatch.h), the
// buffer goes to the experts' ranks and back (all-to-all), and each token sums its routes'
// outputs weighted by their gates, in fp32.
#include <deepspeed/moe.h>

#include <unordered_set>

#include <fmt/format.h>

#include <deepspeed/errors.h>

#include "moe/all_to_all.h"
#include "moe/route_dispatch.h"

namespace deepspeed::moe {
TopKGateImpl::TopKGateImpl(int64_t model_dim, int64_t num_experts, int64_t k, GatingOptions train,
                           double eval_capacity_factor)
    : k_(k), options_(std::move(train)), eval_capacity_factor_(eval_capacity_factor) {
  if (k < 1 || k > num_experts) {
    throw EngineError(fmt::format("MoE: k {} must be between 1 and num_experts {}", k, num_experts));
  }
  if (options_.noisy_gate_policy && *options_.noisy_gate_policy != "Jitter" && *options_.noisy_gate_policy != "RSample") {
    throw EngineError("MoE: noisy_gate_policy must be \"Jitter\", \"RSample\" or none, got \"" +
                      *options_.noisy_gate_policy + "\"");
  }
  wg = register_module("wg", torch::nn::Linear(torch::nn::LinearOptions(model_dim, num_experts).bias(false)));
}

GateDecision TopKGateImpl::forward(const torch::Tensor& input, const torch::Tensor& used_token) {
  auto x = input.to(torch::kFloat32);
  GatingOptions o = options_;
  if (!is_training()) {
    o.capacity_factor = eval_capacity_factor_;
    o.noisy_gate_policy.reset();
  }
  if (o.noisy_gate_policy && *o.noisy_gate_policy == "Jitter") {
    constexpr double kEpsilon = 1e-2;  // DeepSpeed's multiplicative_jitter
    x = x * torch::empty_like(x).uniform_(1.0 - kEpsilon, 1.0 + kEpsilon);
  }
  const auto logits = torch::nn::functional::linear(x, wg->weight.to(torch::kFloat32));
  if (k_ == 1) return top1gating(logits, o, used_token);
  if (k_ == 2) return top2gating(logits, o);
  return topkgating(logits, k_, o);
}

MoEImpl::MoEImpl(int64_t hidden_size, const ExpertFactory& expert, MoEOptions options)
    : options_(std::move(options)) {
  const auto& o = options_;
  if (o.num_experts < 1 || o.ep_size < 1 || o.num_experts % o.ep_size != 0) {
    throw EngineError(fmt::format("MoE: num_experts ({}) must be a positive multiple of ep_size ({})", o.num_experts,
                                  o.ep_size));
  }
  if (o.enable_expert_tensor_parallelism) {
    throw EngineError("MoE: enable_expert_tensor_parallelism needs tensor-parallel experts, which this version does "
                      "not have (docs/moe.md)");
  }
  num_local_experts_ = o.num_experts / o.ep_size;
  GatingOptions gating;
  gating.capacity_factor = o.capacity_factor;
  gating.min_capacity = o.min_capacity;
  gating.drop_tokens = o.drop_tokens;
  gating.use_rts = o.use_rts;
  gating.noisy_gate_policy = o.noisy_gate_policy;
  gating.top2_2nd_expert_sampling = o.top2_2nd_expert_sampling;
  // DeepSpeed's names: deepspeed_moe.gate.wg, deepspeed_moe.experts.deepspeed_experts.<i>.
  auto layer = register_module("deepspeed_moe", std::make_shared<torch::nn::Module>());
  gate_ = layer->register_module("gate", TopKGate(hidden_size, o.num_experts, o.k, gating, o.eval_capacity_factor));
  auto experts = layer->register_module("experts", std::make_shared<torch::nn::Module>());
  experts_ = experts->register_module("deepspeed_experts", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_local_experts_; ++i) {
    expert_modules_.push_back(expert());
    experts_->push_back(expert_modules_.back().ptr());
  }
  if (o.use_residual) {
    residual_mlp_ = expert();
    register_module("mlp", residual_mlp_.ptr());
    coefficient_ = register_module("coefficient", torch::nn::Linear(hidden_size, 2));
  }
}

void MoEImpl::set_deepspeed_parallelism(Groups& groups) {
  groups.create_expert_groups(options_.ep_size);
  ep_group_ = groups.expert_parallel(options_.ep_size);
  gate_->set_ep_group(ep_group_.get());
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> MoEImpl::forward(const torch::Tensor& hidden_states,
                                                                         const torch::Tensor& used_token) {
  if (options_.ep_size > 1 && !ep_group_) {
    throw EngineError(fmt::format("MoE: ep_size {} needs its expert-parallel group: call set_deepspeed_parallelism "
                                  "(groups) first",
                                  options_.ep_size));
  }
  const int64_t model = hidden_states.size(-1);
  const auto tokens = hidden_states.reshape({-1, model});
  const auto d = gate_->forward(tokens, used_token);
  const auto routes = route_map(d.indices, d.locations, d.gates, d.num_experts, d.capacity);
  auto dispatched = dispatch_tokens(tokens, routes).view({d.num_experts, d.capacity, model});
  if (ep_group_) dispatched = all_to_all(dispatched, *ep_group_);
  // [ep, local experts, capacity, M]: local expert i takes its slots from every rank.
  const auto per_expert = dispatched.reshape({options_.ep_size, num_local_experts_, d.capacity, model});
  std::vector<torch::Tensor> outputs;
  for (int64_t i = 0; i < num_local_experts_; ++i) {
    const auto chunk = per_expert.select(1, i).reshape({-1, model});
    outputs.push_back(expert_modules_[static_cast<size_t>(i)].forward(chunk));
  }
  auto expert_output = torch::stack(outputs, 0)
                           .reshape({num_local_experts_, options_.ep_size, d.capacity, model})
                           .transpose(0, 1)
                           .reshape({options_.num_experts, d.capacity, model});
  if (ep_group_) expert_output = all_to_all(expert_output, *ep_group_);
  auto output = combine_routes(expert_output.reshape({d.num_experts * d.capacity, model}), routes)
                    .reshape(hidden_states.sizes());
  if (options_.use_residual) {
    const auto mlp_output = residual_mlp_.forward(hidden_states);
    const auto coefficient = torch::softmax(coefficient_->forward(hidden_states), -1);
    output = output * coefficient.narrow(-1, 0, 1) + mlp_output * coefficient.narrow(-1, 1, 1);
  }
  return {output, d.l_aux, d.exp_counts};
}

std::vector<torch::Tensor> MoEImpl::expert_parameters() const { return experts_->parameters(); }

bool is_moe_param_name(const std::string& name) {
  return name.find("deepspeed_moe.experts.deepspeed_experts.") != std::string::npos;
}

std::vector<ParamGroup> split_params_into_different_moe_groups_for_optimizer(std::vector<ParamGroup> groups,
                                                                              const torch::nn::Module& module) {
  std::unordered_set<const void*> experts;
  std::unordered_set<const void*> known;
  for (const auto& p : module.named_parameters()) {
    known.insert(p.value().unsafeGetTensorImpl());
    if (is_moe_param_name(p.key())) experts.insert(p.value().unsafeGetTensorImpl());
  }
  std::vector<ParamGroup> out;
  std::vector<ParamGroup> moe_groups;
  for (size_t g = 0; g < groups.size(); ++g) {
    ParamGroup dense = groups[g];
    ParamGroup moe = groups[g];
    dense.params.clear();
    moe.params.clear();
    for (const auto& p : groups[g].params) {
      if (!known.count(p.unsafeGetTensorImpl())) {
        throw EngineError(fmt::format("split_params_into_different_moe_groups_for_optimizer: group {} holds a tensor "
                                      "that is not a parameter of the module",
                                      g));
      }
      (experts.count(p.unsafeGetTensorImpl()) ? moe : dense).params.push_back(p);
    }
    out.push_back(std::move(dense));
    if (!moe.params.empty()) {
      moe.extra["moe"] = 1.0;
      moe_groups.push_back(std::move(moe));
    }
  }
  // DeepSpeed appends the expert groups after the others.
  for (auto& m : moe_groups) out.push_back(std::move(m));
  return out;
}

}  // namespace deepspeed::moe
