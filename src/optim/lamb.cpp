#include "optim/lamb.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "deepspeed/errors.h"
#include "optim/fused_cuda.h"
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

  check_and_write_adam_hyperparameters(groups, "optimizer.params", lr, betas, eps, weight_decay);
  if (!(min_coeff <= max_coeff)) {
    throw ConfigError(reader.path("min_coeff"), "min_coeff " + python_repr(min_coeff) +
                                                    " is larger than max_coeff " +
                                                    python_repr(max_coeff));
  }

  GroupWriter writer(groups);
  writer.extra("bias_correction", bias_correction ? 1.0 : 0.0);
  writer.extra("max_coeff", max_coeff);
  writer.extra("min_coeff", min_coeff);
  return std::make_unique<Lamb>(std::move(groups), eps_inside_sqrt);
}

void Lamb::step() { update(nullptr, torch::Tensor(), nullptr); }

void Lamb::step_from(const std::vector<torch::Tensor>& grads, const torch::Tensor& grad_scale,
                     const std::vector<torch::Tensor>& copies) {
  if (!fused_cuda_detail::lamb_available()) {
    Optimizer::step_from(grads, grad_scale, copies);
    return;
  }
  update(&grads, grad_scale, copies.empty() ? nullptr : &copies);
}

const std::vector<double>& Lamb::lamb_coeffs() const {
  if (!pending_coeffs_.empty()) {
    for (const auto& c : pending_coeffs_) {
      const auto host = c.to(torch::kCPU);
      const double* v = host.data_ptr<double>();
      lamb_coeffs_.insert(lamb_coeffs_.end(), v, v + host.numel());
    }
    pending_coeffs_.clear();
  }
  return lamb_coeffs_;
}

// As Adam: a whole group through the fused_lamb op, or none of it.
bool Lamb::update_group_fused(ParamGroup& group, size_t first_index, const std::vector<torch::Tensor>* grads,
                              const torch::Tensor& grad_scale, const std::vector<torch::Tensor>* copies) {
  if (!fused_cuda_detail::lamb_available()) return false;
  std::vector<fused_cuda_detail::Item> items;
  std::optional<double> step;
  size_t index = first_index;
  for (auto& p : group.params) {
    const size_t i = index++;
    const torch::Tensor grad = grads ? (*grads)[i] : p.grad();
    if (!grad.defined()) continue;
    fused_cuda_detail::Item item{p, grad, p, p, copies ? (*copies)[i] : torch::Tensor()};
    auto& state = state_at(i);
    if (state.count("exp_avg")) {
      item.exp_avg = state["exp_avg"];
      item.exp_avg_sq = state["exp_avg_sq"];
    }
    if (!fused_cuda_detail::can_update(item)) return false;
    const auto it = state.find("step");
    const double next = (it == state.end() || !it->second.defined()) ? 1.0 : it->second.item<double>() + 1.0;
    if (step && *step != next) return false;
    step = next;
    items.push_back(std::move(item));
  }
  if (items.empty()) return true;
  index = first_index;
  size_t k = 0;
  for (auto& p : group.params) {
    const size_t i = index++;
    const torch::Tensor grad = grads ? (*grads)[i] : p.grad();
    if (!grad.defined()) continue;
    auto& state = state_at(i);
    if (!state.count("exp_avg")) {
      state["exp_avg"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      state["exp_avg_sq"] = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
    increment_step(state);
    items[k].exp_avg = state["exp_avg"];
    items[k].exp_avg_sq = state["exp_avg_sq"];
    ++k;
  }
  const auto [beta1, beta2] = group.betas;
  const bool bias_correction = extra_or(group, "bias_correction", 1.0) != 0.0;
  fused_cuda_detail::LambScalars s{};
  s.beta1 = beta1;
  s.beta2 = beta2;
  s.eps = group.eps;
  s.weight_decay = group.weight_decay;
  s.step_size = bias_correction ? group.lr * std::sqrt(1.0 - std::pow(beta2, *step)) / (1.0 - std::pow(beta1, *step))
                                : group.lr;
  s.max_coeff = extra_or(group, "max_coeff", 10.0);
  s.min_coeff = extra_or(group, "min_coeff", 0.01);
  s.grad_scale = grad_scale;  // undefined: 1
  s.eps_inside_sqrt = eps_inside_sqrt_;
  pending_coeffs_.push_back(fused_cuda_detail::lamb(items, s));
  return true;
}

// grad_scale: undefined for step() (no scaling).
void Lamb::update(const std::vector<torch::Tensor>* grads, const torch::Tensor& grad_scale,
                  const std::vector<torch::Tensor>* copies) {
  torch::NoGradGuard no_grad;
  lamb_coeffs_.clear();
  pending_coeffs_.clear();
  size_t index = 0;
  for (auto& group : groups_) {
    const size_t first_index = index;
    index += group.params.size();
    if (update_group_fused(group, first_index, grads, grad_scale, copies)) continue;
    // Coefficients stay in update order: a group after a fused one appends after its batch.
    lamb_coeffs();
    const auto [beta1, beta2] = group.betas;
    const bool bias_correction = extra_or(group, "bias_correction", 1.0) != 0.0;
    const double max_coeff = extra_or(group, "max_coeff", 10.0);
    const double min_coeff = extra_or(group, "min_coeff", 0.01);
    size_t i = first_index;
    for (auto& p : group.params) {
      const size_t tensor = i++;
      auto& state = state_at(tensor);
      torch::Tensor grad;
      if (grads) {
        if (!(*grads)[tensor].defined()) continue;
        grad = scaled_fp32_gradient((*grads)[tensor], grad_scale);
      } else {
        if (!p.grad().defined()) continue;
        grad = dense_grad(p, "Lamb");
      }
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
      if (copies && (*copies)[tensor].defined()) (*copies)[tensor].detach().copy_(p);
    }
  }
}

}  // namespace deepspeed
