// Mixture of Experts (DeepSpeed's deepspeed.moe): a gate picks k of E experts for each token,
// tokens go to their experts' buffers of `capacity` slots (the ones that do not fit are
// dropped), the experts run, and each token's outputs come back weighted by its gate values.
// With expert parallelism of ep_size the E experts are split over the ranks of an
// expert-parallel group and the buffers travel there and back with all-to-all.
//
// The gating functions follow DeepSpeed's sharded_moe.py (GShard's algorithm): the same
// capacity, the same load-balancing loss l_aux, the same choice of dropped tokens (with
// random token selection off; with it on, the random draws are LibTorch's, not PyTorch's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include <deepspeed/comm.h>
#include <deepspeed/groups.h>
#include <deepspeed/optimizer.h>

namespace deepspeed::moe {

struct GatingOptions {
  double capacity_factor = 1.0;
  int64_t min_capacity = 8;
  bool drop_tokens = true;
  // top-1: keep a random choice of the tokens that exceed an expert's capacity (random token
  // selection) instead of the first ones.
  bool use_rts = true;
  // top-1: "Jitter" (multiplicative noise on the gate's input), "RSample" (Gumbel noise on the
  // logits for the choice), or none.
  std::optional<std::string> noisy_gate_policy;
  // top-2: pick the second expert with Gumbel noise on the logits.
  bool top2_2nd_expert_sampling = true;
  // top-k (k > 2): which routes an over-full expert keeps: "probs" (the highest gate values)
  // or "position" (the first tokens).
  std::string drop_policy = "probs";
  // drop_tokens off: the capacity is the largest expert count over this group.
  comm::ProcessGroup* ep_group = nullptr;
};

// The gate's decision for S tokens, E experts and k routes per token.
struct GateDecision {
  torch::Tensor l_aux;       // 0-dim fp32: the load-balancing loss
  int64_t capacity = 0;      // slots per expert
  int64_t num_experts = 0;
  torch::Tensor indices;     // [k, S] int64: the expert of each route, -1 where it was dropped
  torch::Tensor locations;   // [k, S] int64: its slot in that expert's buffer (0 where dropped)
  torch::Tensor gates;       // [k, S] fp32: its weight in the token's output (0 where dropped)
  torch::Tensor exp_counts;  // [E] int64: routes each expert was chosen for, before dropping
};

// `logits`: [S, E] fp32. Throws EngineError on shapes or options that do not fit (S smaller
// than min_capacity with token dropping, k larger than E).
GateDecision top1gating(torch::Tensor logits, const GatingOptions& options, const torch::Tensor& used_token = {});
GateDecision top2gating(torch::Tensor logits, const GatingOptions& options);
GateDecision topkgating(torch::Tensor logits, int64_t k, const GatingOptions& options);
// DeepSpeed's dense combine weights [S, E, capacity] of a decision (dispatch mask: != 0).
torch::Tensor combine_weights(const GateDecision& decision);

// The gate: a bias-free linear layer (wg, fp32) from the hidden size to E logits.
class TopKGateImpl : public torch::nn::Module {
 public:
  TopKGateImpl(int64_t model_dim, int64_t num_experts, int64_t k, GatingOptions train, double eval_capacity_factor);
  GateDecision forward(const torch::Tensor& input, const torch::Tensor& used_token = {});
  void set_ep_group(comm::ProcessGroup* group) { options_.ep_group = group; }
  torch::nn::Linear wg{nullptr};

 private:
  int64_t k_;
  GatingOptions options_;
  double eval_capacity_factor_;
};
TORCH_MODULE(TopKGate);

// What makes one expert: a module from [tokens, hidden] to [tokens, hidden].
using ExpertFactory = std::function<torch::nn::AnyModule()>;

struct MoEOptions {
  int64_t num_experts = 1;
  int64_t ep_size = 1;
  int64_t k = 1;
  double capacity_factor = 1.0;
  double eval_capacity_factor = 1.0;
  int64_t min_capacity = 4;
  bool use_residual = false;  // PR-MoE: a dense MLP beside the experts, mixed by a learned coefficient
  std::optional<std::string> noisy_gate_policy;
  bool drop_tokens = true;
  bool use_rts = true;
  bool top2_2nd_expert_sampling = true;
  bool enable_expert_tensor_parallelism = false;
};

// DeepSpeed's deepspeed.moe.layer.MoE. forward returns (output, l_aux, exp_counts). The
// experts' parameters are named "deepspeed_moe.experts.deepspeed_experts.<i>.*" (i: this
// rank's local experts) and the gate's "deepspeed_moe.gate.wg.weight", as DeepSpeed names them.
class MoEImpl : public torch::nn::Module {
 public:
  MoEImpl(int64_t hidden_size, const ExpertFactory& expert, MoEOptions options);
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& hidden_states,
                                                                  const torch::Tensor& used_token = {});
  // Expert parallelism over `groups` (DeepSpeed's set_deepspeed_parallelism): makes the
  // expert-parallel groups of ep_size (collective over the world) and exchanges tokens in this
  // rank's. Needed before forward when ep_size > 1.
  void set_deepspeed_parallelism(Groups& groups);
  int64_t num_local_experts() const { return num_local_experts_; }
  const MoEOptions& options() const { return options_; }
  // This rank's experts' parameters (reduced over the expert-data-parallel group, not the
  // data-parallel group), and the name of their group ("ep_size_<n>").
  std::vector<torch::Tensor> expert_parameters() const;
  std::string expert_group_name() const { return "ep_size_" + std::to_string(options_.ep_size); }

 private:
  MoEOptions options_;
  int64_t num_local_experts_;
  TopKGate gate_{nullptr};
  torch::nn::ModuleList experts_{nullptr};           // registers them under DeepSpeed's names
  std::vector<torch::nn::AnyModule> expert_modules_;  // the same experts, with their forward
  torch::nn::AnyModule residual_mlp_;
  torch::nn::Linear coefficient_{nullptr};
  std::shared_ptr<comm::ProcessGroup> ep_group_;
};
TORCH_MODULE(MoE);

// Whether a parameter of a module belongs to an expert (by DeepSpeed's naming).
bool is_moe_param_name(const std::string& name);

// DeepSpeed's split_params_into_different_moe_groups_for_optimizer: the expert parameters of
// each group (named as is_moe_param_name says, found in `module`) move into a group of their
// own with the same hyper-parameters, marked extra["moe"] = 1 (DeepSpeed's "moe": True); the
// other groups keep the rest. Throws EngineError where a group holds no parameter of `module`.
std::vector<ParamGroup> split_params_into_different_moe_groups_for_optimizer(std::vector<ParamGroup> groups,
                                                                              const torch::nn::Module& module);

}  // namespace deepspeed::moe
