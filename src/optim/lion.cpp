#include "optim/lion.h"

#include "deepspeed/errors.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

namespace deepspeed {

std::unique_ptr<Optimizer> Lion::create(const nlohmann::json& params,
                                        std::vector<ParamGroup> groups,
                                        const OptimizerOptions& options) {
  ParamReader reader(params, "optimizer.params", "Lion");
  const double lr = reader.number("lr").value_or(1e-3);
  const auto betas = reader.pair("betas").value_or(std::array<double, 2>{0.9, 0.999});
  const double weight_decay = reader.number("weight_decay").value_or(0.0);
  reader.boolean("set_grad_none");          // FusedLion: zero_grad sets None (always, here)
  reader.boolean("fp32_optimizer_states");  // DeepSpeedCPULion
  reader.reject_unknown();

  check_lr(lr, reader.path("lr"));
  check_betas(betas, reader.path("betas"));
  check_weight_decay(weight_decay, reader.path("weight_decay"));

  GroupWriter writer(groups);
  writer.lr(lr);
  writer.betas(betas);
  writer.weight_decay(weight_decay);
  return std::make_unique<Lion>(std::move(groups), options.cpu_offload);
}

void Lion::step() {
  torch::NoGradGuard no_grad;
  size_t index = 0;
  for (auto& group : groups_) {
    const auto [beta1, beta2] = group.betas;
    for (auto& p : group.params) {
      auto& state = state_at(index++);
      if (!p.grad().defined()) continue;
      const torch::Tensor grad = dense_grad(p, "Lion");
      if (!state.count("exp_avg")) {
        state["exp_avg"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      increment_step(state);
      torch::Tensor w = math_view(p);
      torch::Tensor exp_avg = math_view(state["exp_avg"]);
      torch::Tensor c = exp_avg.mul(beta1).add_(grad, 1.0 - beta1);
      w.mul_(1.0 - group.lr * group.weight_decay);
      w.add_(c.sign_(), -group.lr);
      exp_avg.mul_(beta2).add_(grad, 1.0 - beta2);
      write_back(p, w);
      write_back(state["exp_avg"], exp_avg);
    }
  }
}

}  // namespace deepspeed
