#include "optim/lamb.h"

#include <algorithm>
#include <cmath>

#include "deepspeed/errors.h"
#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

namespace deepspeed {

std::unique_ptr<Optimizer> Lamb::create(const nlohmann::json& params,
                                        std::vector<ParamGroup> groups) {
  ParamReader reader(params, "optimizer.params", "Lamb");
  const double lr = reader.number("lr").value_or(1e-3);
  const bool bias_correction = reader.boolean("bias_correction").value_or(true);
  const auto betas = reader.pair("betas").value_or(std::array<double, 2>{0.9, 0.999});
  const double eps = reader.number("eps").value_or(1e-8);
  const bool eps_inside_sqrt = reader.boolean("eps_inside_sqrt").value_or(false);
  const double weight_decay = reader.number("weight_decay").value_or(0.0);
  const double max_coeff = reader.number("max_coeff").value_or(10.0);
  const double min_coeff = reader.number("min_coeff").value_or(0.01);
  if (reader.boolean("amsgrad").value_or(false)) {
    throw ConfigError(reader.path("amsgrad"), "FusedLamb does not support the AMSGrad variant.");
  }
  reader.reject_unknown();

  check_lr(lr, reader.path("lr"));
  check_betas(betas, reader.path("betas"));
  check_eps(eps, reader.path("eps"));
  check_weight_decay(weight_decay, reader.path("weight_decay"));
  if (!(min_coeff <= max_coeff)) {
    throw ConfigError(reader.path("min_coeff"), "min_coeff " + python_repr(min_coeff) +
                                                    " is larger than max_coeff " +
                                                    python_repr(max_coeff));
  }

  GroupWriter writer(groups);
  writer.lr(lr);
  writer.betas(betas);
  writer.eps(eps);
  writer.weight_decay(weight_decay);
  writer.extra("bias_correction", bias_correction ? 1.0 : 0.0);
  writer.extra("max_coeff", max_coeff);
  writer.extra("min_coeff", min_coeff);
  return std::make_unique<Lamb>(std::move(groups), eps_inside_sqrt);
}

void Lamb::step() {
  torch::NoGradGuard no_grad;
  lamb_coeffs_.clear();
  size_t index = 0;
  for (auto& group : groups_) {
    const auto [beta1, beta2] = group.betas;
    const bool bias_correction = extra_or(group, "bias_correction", 1.0) != 0.0;
    const double max_coeff = extra_or(group, "max_coeff", 10.0);
    const double min_coeff = extra_or(group, "min_coeff", 0.01);
    for (auto& p : group.params) {
      auto& state = state_at(index++);
      if (!p.grad().defined()) continue;
      const torch::Tensor grad = dense_grad(p, "Lamb");
      if (!state.count("exp_avg")) {
        state["exp_avg"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
        state["exp_avg_sq"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      }
      const double step = increment_step(state);
      torch::Tensor w = math_view(p);
      torch::Tensor exp_avg = math_view(state["exp_avg"]);
      torch::Tensor exp_avg_sq = math_view(state["exp_avg_sq"]);
      exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
      exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);

      const torch::Tensor denom = eps_inside_sqrt_ ? (exp_avg_sq + group.eps).sqrt_()
                                                   : exp_avg_sq.sqrt().add_(group.eps);
      torch::Tensor update = exp_avg / denom;
      if (group.weight_decay != 0.0) update.add_(w, group.weight_decay);

      const double w_norm = w.norm().item<double>();
      const double u_norm = update.norm().item<double>();
      double coeff = 1.0;
      if (w_norm != 0.0 && u_norm != 0.0) coeff = std::clamp(w_norm / u_norm, min_coeff, max_coeff);
      lamb_coeffs_.push_back(coeff);

      const double step_size =
          bias_correction ? group.lr * std::sqrt(1.0 - std::pow(beta2, step)) /
                                (1.0 - std::pow(beta1, step))
                          : group.lr;
      w.add_(update, -step_size * coeff);
      write_back(p, w);
      write_back(state["exp_avg"], exp_avg);
      write_back(state["exp_avg_sq"], exp_avg_sq);
    }
  }
}

}  // namespace deepspeed
