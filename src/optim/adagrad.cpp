#include "optim/adagrad.h"

#include <deepspeed/ops_config.h>

#include "deepspeed/errors.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

#if DEEPSPEED_OP_CPU_ADAGRAD_BUILT
#include "cpu/common/torch_bridge.h"
#include "cpu/cpu_adagrad/cpu_adagrad.h"
#endif

namespace deepspeed {
namespace {

// The cpu_adagrad op for an fp32 CPU tensor (ops/cpu/cpu_adagrad/cpu_adagrad.h): the same
// update as the expression in Adagrad::step, in one pass over memory. `clr` is the step's
// learning rate after lr_decay. False, having touched nothing, where the op does not apply.
bool update_with_cpu_adagrad([[maybe_unused]] torch::Tensor& p,
                             [[maybe_unused]] const torch::Tensor& grad,
                             [[maybe_unused]] torch::Tensor& sum,
                             [[maybe_unused]] const ParamGroup& group,
                             [[maybe_unused]] double clr) {
#if DEEPSPEED_OP_CPU_ADAGRAD_BUILT
  if (!ops::cpu_op_can_update({&p, &grad, &sum})) return false;
  ops::AdagradStep s;
  s.lr = clr;
  s.eps = group.eps;
  s.weight_decay = group.weight_decay;
  ops::adagrad_step(p.data_ptr<float>(), grad.data_ptr<float>(), sum.data_ptr<float>(),
                    p.numel(), s);
  ops::mark_written(p);
  ops::mark_written(sum);
  return true;
#else
  return false;  // DS_BUILD_CPU_ADAGRAD=0: the torch expression does it
#endif
}

}  // namespace

std::unique_ptr<Optimizer> Adagrad::create(const nlohmann::json& params,
                                           std::vector<ParamGroup> groups,
                                           const OptimizerOptions& options) {
  ParamReader reader(params, "optimizer.params", "Adagrad");
  const double lr = reader.number("lr").value_or(1e-2);
  const double lr_decay = reader.number("lr_decay").value_or(0.0);
  const double weight_decay = reader.number("weight_decay").value_or(0.0);
  const double initial_accumulator_value =
      reader.number("initial_accumulator_value").value_or(0.0);
  const double eps = reader.number("eps").value_or(1e-10);
  const bool maximize = reader.boolean("maximize").value_or(false);
  if (reader.boolean("amsgrad").value_or(false)) {
    throw ConfigError(reader.path("amsgrad"), "Adagrad has no AMSGrad variant");
  }
  for (const char* key : {"foreach", "differentiable", "fused", "fp32_optimizer_states"}) {
    reader.boolean(key);
  }
  reader.reject_unknown();

  check_lr(lr, reader.path("lr"));
  if (lr_decay < 0.0) {
    throw ConfigError(reader.path("lr_decay"), "Invalid lr_decay value: " + python_repr(lr_decay));
  }
  check_weight_decay(weight_decay, reader.path("weight_decay"));
  if (initial_accumulator_value < 0.0) {
    throw ConfigError(reader.path("initial_accumulator_value"),
                      "Invalid initial_accumulator_value value: " +
                          python_repr(initial_accumulator_value));
  }
  check_eps(eps, reader.path("eps"));

  GroupWriter writer(groups);
  writer.lr(lr);
  writer.weight_decay(weight_decay);
  writer.eps(eps);
  writer.extra("lr_decay", lr_decay);
  writer.extra("initial_accumulator_value", initial_accumulator_value);
  writer.extra("maximize", maximize ? 1.0 : 0.0);
  return std::make_unique<Adagrad>(std::move(groups), options.cpu_offload);
}

void Adagrad::step() {
  torch::NoGradGuard no_grad;
  size_t index = 0;
  for (auto& group : groups_) {
    const double lr_decay = extra_or(group, "lr_decay", 0.0);
    const double initial = extra_or(group, "initial_accumulator_value", 0.0);
    const bool maximize = extra_or(group, "maximize", 0.0) != 0.0;
    for (auto& p : group.params) {
      auto& state = state_at(index++);
      if (!p.grad().defined()) continue;
      torch::Tensor grad = dense_grad(p, "Adagrad");
      if (maximize) grad = -grad;
      if (!state.count("sum")) {
        state["sum"] = torch::full_like(p, initial, torch::MemoryFormat::Preserve);
      }
      const double step = increment_step(state);
      const double clr = group.lr / (1.0 + (step - 1.0) * lr_decay);
      if (update_with_cpu_adagrad(p, grad, state["sum"], group, clr)) continue;
      torch::Tensor w = math_view(p);
      torch::Tensor sum = math_view(state["sum"]);
      if (group.weight_decay != 0.0) grad = grad.add(w, group.weight_decay);
      sum.addcmul_(grad, grad, 1.0);
      w.addcdiv_(grad, sum.sqrt().add_(group.eps), -clr);
      write_back(p, w);
      write_back(state["sum"], sum);
    }
  }
}

}  // namespace deepspeed
