#include "runtime/zero/moe_zero_optimizer.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed {
namespace {

// Per optimizer group: -1 when it holds no expert, else the index of its experts' group.
std::vector<int64_t> expert_group_of_each_optimizer_group(const Optimizer& optimizer, const ExpertParameters& experts) {
  std::unordered_map<const void*, int64_t> expert_of;
  for (size_t e = 0; e < experts.size(); ++e) {
    for (const auto& p : experts[e].parameters) expert_of.emplace(p.unsafeGetTensorImpl(), static_cast<int64_t>(e));
  }
  std::vector<int64_t> out;
  bool any = false;
  for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
    std::optional<int64_t> owner;
    bool dense = false;
    for (const auto& p : optimizer.param_groups()[g].params) {
      const auto it = expert_of.find(p.unsafeGetTensorImpl());
      if (it == expert_of.end()) {
        dense = true;
      } else if (!owner) {
        owner = it->second;
      } else if (*owner != it->second) {
        throw EngineError(fmt::format("optimizer group {} holds experts of two expert-parallel sizes; under ZeRO each "
                                      "size needs groups of its own (docs/moe.md)",
                                      g));
      }
    }
    if (owner && dense) {
      throw EngineError(fmt::format("optimizer group {} mixes MoE expert parameters with others; under ZeRO the experts "
                                    "need groups of their own: split_params_into_different_moe_groups_for_optimizer "
                                    "(docs/moe.md)",
                                    g));
    }
    any = any || owner.has_value();
    out.push_back(owner.value_or(-1));
  }
  if (!any) {
    throw EngineError("The model has moe layers, but None of the param groups are marked as MoE. Create a param group "
                      "with 'moe' key set to True before creating optimizer (split_params_into_different_moe_groups_"
                      "for_optimizer, docs/moe.md)");
  }
  return out;
}

std::vector<bool> groups_where(const std::vector<int64_t>& owner, int64_t value) {
  std::vector<bool> out;
  for (int64_t o : owner) out.push_back(o == value);
  return out;
}

}  // namespace

MoeZeroOptimizer::MoeZeroOptimizer(std::vector<torch::Tensor> parameters, std::shared_ptr<comm::ProcessGroup> group,
                                   const DeepSpeedConfig& config, std::shared_ptr<Optimizer> optimizer,
                                   ModelParallelGradients model_parallel, const ExpertParameters& experts)
    : OptimizerWrapper(loss_scaler_options(config, LossScaleAlgorithm::Zero), model_parallel),
      group_(std::move(group)),
      optimizer_(std::move(optimizer)) {
  if (!optimizer_) throw EngineError("ZeRO needs an optimizer");
  const auto owner = expert_group_of_each_optimizer_group(*optimizer_, experts);
  dense_ = std::make_unique<ZeroOptimizer>(parameters, group_, config, optimizer_, std::move(model_parallel),
                                           ZeroOptimizerScope{groups_where(owner, -1), 0.0});
  for (size_t e = 0; e < experts.size(); ++e) {
    const auto scope = groups_where(owner, static_cast<int64_t>(e));
    if (std::find(scope.begin(), scope.end(), true) == scope.end()) {
      throw EngineError(fmt::format("no optimizer group holds the experts of expert-parallel size {}; under ZeRO they "
                                    "need groups of their own (docs/moe.md)",
                                    experts[e].expert_parallel->size()));
    }
    // An expert's gradient already sums the tokens of its whole expert-parallel group: summed
    // over the ranks that hold the same expert, it is divided by the data-parallel size.
    experts_.push_back({std::make_unique<ZeroOptimizer>(parameters, experts[e].expert_data_parallel, config, optimizer_,
                                                        ModelParallelGradients{},
                                                        ZeroOptimizerScope{scope, static_cast<double>(group_->size())}),
                        experts[e].expert_parallel});
  }
}

void MoeZeroOptimizer::before_backward(bool boundary) {
  dense_->before_backward(boundary);
  for (auto& e : experts_) e.zero->before_backward(boundary);
}

void MoeZeroOptimizer::after_backward(bool boundary) {
  dense_->after_backward(boundary);
  for (auto& e : experts_) e.zero->after_backward(boundary);
}

void MoeZeroOptimizer::zero_grad() {
  dense_->zero_grad();
  for (auto& e : experts_) e.zero->zero_grad();
}

MemoryReport MoeZeroOptimizer::memory_report() const {
  auto r = dense_->memory_report();
  for (const auto& e : experts_) {
    const auto x = e.zero->memory_report();
    r.parameters += x.parameters;
    r.parameters_peak += x.parameters_peak;
    r.gradients += x.gradients;
    r.master_weights += x.master_weights;
    r.communication_buffers += x.communication_buffers;
  }
  r.optimizer_states = optimizer_state_bytes(*optimizer_);  // one optimizer: counted once
  return r;
}

double MoeZeroOptimizer::last_communication_wait() const {
  double wait = dense_->last_communication_wait();
  for (const auto& e : experts_) wait += e.zero->last_communication_wait();
  return wait;
}

void MoeZeroOptimizer::add_to_model_states(checkpoint::ModelStates& /*states*/, const torch::nn::Module& /*module*/,
                                           const DeepSpeedConfig& /*config*/) const {
  throw CheckpointError("save_checkpoint: ZeRO with MoE layers cannot be saved yet (docs/moe.md); nothing was written");
}

void MoeZeroOptimizer::load_checkpoint(const CheckpointLoad& /*load*/) {
  throw CheckpointError("load_checkpoint: ZeRO with MoE layers cannot load checkpoints yet (docs/moe.md)");
}

void MoeZeroOptimizer::begin_step() {
  dense_->begin_step();
  for (auto& e : experts_) e.zero->begin_step();
}

// Each part agrees over its own group; the expert parts' groups hold only some of the
// data-parallel ranks, so the verdict is agreed over the data-parallel group once more.
OptimizerWrapper::GradientVerdict MoeZeroOptimizer::check_gradients(bool /*norm_wanted*/) {
  auto v = dense_->check_gradients(false);
  for (auto& e : experts_) {
    const auto x = e.zero->check_gradients(false);
    v.overflow = v.overflow || x.overflow;
    v.nonfinite = v.nonfinite || x.nonfinite;
  }
  auto flags = torch::tensor({v.overflow ? 1.0f : 0.0f, v.nonfinite ? 1.0f : 0.0f},
                             torch::TensorOptions().dtype(torch::kFloat32).device(group_->device()));
  group_->all_reduce(flags, comm::ReduceOp::Max);
  const auto agreed = flags.cpu();
  GradientVerdict out;
  out.overflow = agreed[0].item<float>() > 0.0f;
  out.nonfinite = agreed[1].item<float>() > 0.0f;
  return out;
}

// The dense partitions summed over the data-parallel group; each expert part's over its
// expert-data-parallel group (the experts this rank's expert-parallel position holds), then over
// the expert-parallel group (the other experts): every element once.
torch::Tensor MoeZeroOptimizer::global_squared_norm() {
  auto sq = dense_->partition_squared_norm();
  for (auto& e : experts_) {
    auto x = e.zero->partition_squared_norm().to(group_->device()).reshape({1});
    if (e.expert_parallel->size() > 1) e.expert_parallel->all_reduce(x);
    sq = sq + x.reshape({}).to(sq.device());
  }
  model_parallel_.sum(sq);
  return sq;
}

void MoeZeroOptimizer::update(const torch::Tensor& grad_scale) {
  std::vector<torch::Tensor> grads(optimizer_->param_groups().size()), copies;
  dense_->step_inputs(grads, copies);
  for (auto& e : experts_) e.zero->step_inputs(grads, copies);
  optimizer_->step_from(grads, grad_scale, copies);
  dense_->after_update();
  for (auto& e : experts_) e.zero->after_update();
}

void MoeZeroOptimizer::write_model_copies() {
  dense_->write_model_copies();
  for (auto& e : experts_) e.zero->write_model_copies();
}

}  // namespace deepspeed
