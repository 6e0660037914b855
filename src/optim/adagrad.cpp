#include "optim/adagrad.h"

#include "deepspeed/errors.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

namespace deepspeed {

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
      torch::Tensor w = math_view(p);
      torch::Tensor sum = math_view(state["sum"]);
      if (group.weight_decay != 0.0) grad = grad.add(w, group.weight_decay);
      const double clr = group.lr / (1.0 + (step - 1.0) * lr_decay);
      sum.addcmul_(grad, grad, 1.0);
      w.addcdiv_(grad, sum.sqrt().add_(group.eps), -clr);
      write_back(p, w);
      write_back(state["sum"], sum);
    }
  }
}

}  // namespace deepspeed
