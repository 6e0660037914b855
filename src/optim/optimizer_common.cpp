#include "optim/optimizer_common.h"

#include <cmath>

#include "deepspeed/errors.h"

namespace deepspeed {

void check_lr(double lr, const std::string& path) {
  if (!(lr >= 0.0)) throw ConfigError(path, "Invalid learning rate: " + python_repr(lr));
}

void check_eps(double eps, const std::string& path) {
  if (!(eps >= 0.0)) throw ConfigError(path, "Invalid epsilon value: " + python_repr(eps));
}

void check_weight_decay(double weight_decay, const std::string& path) {
  if (!(weight_decay >= 0.0)) {
    throw ConfigError(path, "Invalid weight_decay value: " + python_repr(weight_decay));
  }
}

void check_betas(const std::array<double, 2>& betas, const std::string& path) {
  for (int i = 0; i < 2; ++i) {
    if (!(betas[i] >= 0.0 && betas[i] < 1.0)) {
      throw ConfigError(path, "Invalid beta parameter at index " + std::to_string(i) + ": " +
                                  python_repr(betas[i]) + " (expected 0 <= beta < 1)");
    }
  }
}

double extra_or(const ParamGroup& group, const std::string& key, double fallback) {
  auto it = group.extra.find(key);
  return it == group.extra.end() ? fallback : it->second;
}

void check_and_write_adam_hyperparameters(std::vector<ParamGroup>& groups, const std::string& section, double lr,
                                          const std::array<double, 2>& betas, double eps, double weight_decay) {
  check_lr(lr, section + ".lr");
  check_betas(betas, section + ".betas");
  check_eps(eps, section + ".eps");
  check_weight_decay(weight_decay, section + ".weight_decay");
  GroupWriter writer(groups);
  writer.lr(lr);
  writer.betas(betas);
  writer.eps(eps);
  writer.weight_decay(weight_decay);
}

double increment_step(std::map<std::string, torch::Tensor>& state) {
  auto it = state.find("step");
  if (it == state.end() || !it->second.defined()) {
    it = state.insert_or_assign("step", torch::zeros({}, torch::kFloat)).first;
  }
  // A loaded checkpoint may hold an int64 or a float; keep it a float scalar either way.
  const double step = it->second.item<double>() + 1.0;
  if (it->second.scalar_type() != torch::kFloat || it->second.dim() != 0) {
    it->second = torch::zeros({}, torch::kFloat);
  }
  it->second.fill_(step);
  return step;
}

namespace {
bool reduced_precision(const torch::Tensor& t) {
  return t.scalar_type() == torch::kHalf || t.scalar_type() == torch::kBFloat16;
}
}  // namespace

torch::Tensor dense_grad(const torch::Tensor& param, const char* algorithm) {
  const torch::Tensor& grad = param.grad();
  if (grad.is_sparse()) {
    throw std::invalid_argument(std::string(algorithm) + " does not support sparse gradients");
  }
  const auto math_type = reduced_precision(param) ? torch::kFloat : param.scalar_type();
  return grad.scalar_type() == math_type ? grad : grad.to(math_type);
}

torch::Tensor scaled_fp32_gradient(const torch::Tensor& grad, const torch::Tensor& grad_scale) {
  if (grad.scalar_type() != torch::kFloat32) {
    auto g = grad.to(torch::kFloat32);
    return grad_scale.defined() ? g.mul_(grad_scale) : g;
  }
  return grad_scale.defined() ? grad.detach().mul_(grad_scale) : grad;
}

torch::Tensor math_view(const torch::Tensor& t) {
  return reduced_precision(t) ? t.to(torch::kFloat) : t;
}

void write_back(torch::Tensor& original, const torch::Tensor& work) {
  if (!work.is_same(original)) original.copy_(work);
}

}  // namespace deepspeed
