#include "onebit/onebit_adam.h"

#include <deepspeed/errors.h>

#include "onebit/adam_updates.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

namespace deepspeed {
OneBitAdam::OneBitAdam(std::vector<ParamGroup> groups, std::shared_ptr<comm::ProcessGroup> group,
                       OneBitSettings settings)
    : Optimizer(std::move(groups)), group_(std::move(group)), settings_(std::move(settings)) {
  if (!group_) throw EngineError("1-bit Adam needs the data-parallel process group");
}

std::unique_ptr<Optimizer> OneBitAdam::create(const nlohmann::json& params, std::vector<ParamGroup> groups,
                                              std::shared_ptr<comm::ProcessGroup> group) {
  ParamReader reader(params, "optimizer.params", "OneBitAdam");
  auto settings = read_onebit_settings(reader, groups, "1-bit Adam", /*with_freeze_step=*/true);
  reader.reject_unknown();
  return std::make_unique<OneBitAdam>(std::move(groups), std::move(group), std::move(settings));
}

void OneBitAdam::step() {
  torch::NoGradGuard no_grad;
  const bool setup = !initialized_;
  const int64_t world = group_->size();
  if (errors_.size() < state_.size()) errors_.resize(state_.size());
  double last_step = 0.0;
  size_t index = 0;
  for (auto& group : groups_) {
    const double beta1 = group.betas[0];
    const double beta2 = group.betas[1];
    const bool non_freeze = extra_or(group, "non_freeze", 0.0) != 0.0;
    for (auto& param : group.params) {
      const size_t i = index++;
      if (!param.grad().defined()) continue;
      auto grad = dense_grad(param, "1-bit Adam");
      auto& state = state_at(i);
      auto p = param.detach();
      if (!state.count("exp_avg")) {
        state["exp_avg"] = torch::zeros_like(p);
        state["exp_avg_sq"] = torch::zeros_like(p);
      }
      last_step = increment_step(state);
      auto& exp_avg = state["exp_avg"];
      auto& exp_avg_sq = state["exp_avg_sq"];
      if (errors_.size() <= i) errors_.resize(i + 1);
      auto& errors = errors_[i];
      const bool compressed_phase = setup || compressing_;
      if (compressed_phase && !errors.worker.defined()) {
        errors = comm::make_compression_errors(p.numel(), world, group_->device());
      }
      if (!compressed_phase) {
        exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
      } else if (non_freeze) {
        // This group is averaged in full precision and keeps updating its variance.
        auto averaged = grad.clone();
        group_->all_reduce(averaged);
        averaged.div_(static_cast<double>(world));
        exp_avg.mul_(beta1).add_(averaged, 1.0 - beta1);
        exp_avg_sq.mul_(beta2).addcmul_(averaged, averaged, 1.0 - beta2);
      } else {
        // The set-up step sends exp_avg as it is (DeepSpeed's warm-up of its buffers).
        if (!setup) onebit_detail::update_momentum(exp_avg, grad, beta1);
        if (world > 1) exp_avg.copy_(comm::compressed_allreduce(*group_, exp_avg, errors));
      }
      if (setup) continue;
      onebit_detail::update_parameter(p, exp_avg, exp_avg_sq, group);
    }
  }
  if (setup) {
    initialized_ = true;
    errors_.clear();
    return;
  }
  if (!compressing_ && last_step >= static_cast<double>(settings_.freeze_step)) compressing_ = true;
}

void OneBitAdam::state_loaded() {
  errors_.clear();
  compressing_ = first_tensor_step(*this) >= static_cast<double>(settings_.freeze_step);
}

}  // namespace deepspeed
