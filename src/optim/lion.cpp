#include "optim/lion.h"

#include <deepspeed/ops_config.h>

#include "deepspeed/errors.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

#if DEEPSPEED_OP_CPU_LION_BUILT
#include "cpu/common/torch_bridge.h"
#include "cpu/cpu_lion/cpu_lion.h"
#endif

namespace deepspeed {
namespace {

// The cpu_lion op for an fp32 CPU tensor (ops/cpu/cpu_lion/cpu_lion.h): the same update as
// the expression in Lion::step, in one pass over memory. False, having touched nothing,
// where the op does not apply.
bool update_with_cpu_lion([[maybe_unused]] torch::Tensor& p,
                          [[maybe_unused]] const torch::Tensor& grad,
                          [[maybe_unused]] torch::Tensor& exp_avg,
                          [[maybe_unused]] const ParamGroup& group) {
#if DEEPSPEED_OP_CPU_LION_BUILT
  if (!ops::cpu_op_can_update({&p, &grad, &exp_avg})) return false;
  ops::LionStep s;
  s.lr = group.lr;
  s.beta1 = group.betas[0];
  s.beta2 = group.betas[1];
  s.weight_decay = group.weight_decay;
  ops::lion_step(p.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                 p.numel(), s);
  ops::mark_written(p);
  ops::mark_written(exp_avg);
  return true;
#else
  return false;  // DS_BUILD_CPU_LION=0: the torch expression does it
#endif
}

}  // namespace

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
      if (update_with_cpu_lion(p, grad, state["exp_avg"], group)) continue;
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
