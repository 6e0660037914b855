#include "onebit/onebit_lamb.h"

#include <algorithm>
#include <cmath>

#include <deepspeed/errors.h>

#include "optim/optimizer_common.h"
#include "optim/params_reader.h"

namespace deepspeed {
namespace {

double scalar(const std::map<std::string, torch::Tensor>& state, const char* key) { return state.at(key).item<double>(); }
void set_scalar(std::map<std::string, torch::Tensor>& state, const char* key, double value) {
  state[key] = torch::full({}, value, torch::kFloat64);
}

}  // namespace

OneBitLamb::OneBitLamb(std::vector<ParamGroup> groups, std::shared_ptr<comm::ProcessGroup> group,
                       OneBitSettings settings, OneBitLambCoefficients coefficients)
    : Optimizer(std::move(groups)),
      group_(std::move(group)),
      settings_(std::move(settings)),
      coefficients_(coefficients) {
  if (!group_) throw EngineError("1-bit Lamb needs the data-parallel process group");
}

std::unique_ptr<Optimizer> OneBitLamb::create(const nlohmann::json& params, std::vector<ParamGroup> groups,
                                              std::shared_ptr<comm::ProcessGroup> group) {
  ParamReader reader(params, "optimizer.params", "OneBitLamb");
  auto settings = read_onebit_settings(reader, groups, "1-bit Lamb", /*with_freeze_step=*/true);
  const double max_coeff = reader.number("max_coeff").value_or(10.0);
  const double min_coeff = reader.number("min_coeff").value_or(0.01);
  OneBitLambCoefficients c;
  c.coeff_beta = reader.number("coeff_beta").value_or(c.coeff_beta);
  c.factor_max = reader.number("factor_max").value_or(c.factor_max);
  c.factor_min = reader.number("factor_min").value_or(c.factor_min);
  c.factor_threshold = reader.number("factor_threshold").value_or(c.factor_threshold);
  reader.reject_unknown();
  if (!(min_coeff <= max_coeff)) {
    throw ConfigError(reader.path("min_coeff"),
                      "min_coeff " + python_repr(min_coeff) + " is larger than max_coeff " + python_repr(max_coeff));
  }
  if (!(c.factor_min <= c.factor_max)) {
    throw ConfigError(reader.path("factor_min"), "factor_min " + python_repr(c.factor_min) +
                                                     " is larger than factor_max " + python_repr(c.factor_max));
  }
  GroupWriter writer(groups);
  writer.extra("max_coeff", max_coeff);
  writer.extra("min_coeff", min_coeff);
  return std::make_unique<OneBitLamb>(std::move(groups), std::move(group), std::move(settings), c);
}

void OneBitLamb::init_state(size_t index, const torch::Tensor& param) {
  auto& state = state_at(index);
  // A tensor's state is made when it is empty, or holds only a scaling coefficient.
  if (!(state.empty() || (state.size() == 1 && state.count("scaling_coeff")))) return;
  set_scalar(state, "step", 0);
  set_scalar(state, "lamb_coeff_freeze", 0.0);
  set_scalar(state, "last_factor", 1.0);
  state["exp_avg"] = torch::zeros_like(param);
  state["exp_avg_sq"] = torch::zeros_like(param);
  state["exp_avg_sq_fresh"] = torch::zeros_like(param);
}

// Every tensor's momentum (in group order, whether it had a gradient or not) as one flat
// buffer, padded, through the compressed all-reduce, and back.
void OneBitLamb::compress_momentum() {
  std::vector<torch::Tensor> parts;
  for (const auto& s : state_) parts.push_back(s.at("exp_avg").reshape({-1}));
  int64_t numel = 0;
  for (const auto& p : parts) numel += p.numel();
  const int64_t world = group_->size();
  const int64_t length = comm::compressed_length(numel, world);
  if (!padding_.defined() || padding_.numel() != length - numel) {
    padding_ = torch::zeros({length - numel}, parts.front().options());
  }
  parts.push_back(padding_);
  if (!errors_.worker.defined()) errors_ = comm::make_compression_errors(length, world, group_->device());
  const auto result = comm::compressed_allreduce(*group_, torch::cat(parts), errors_);
  int64_t offset = 0;
  for (auto& s : state_) {
    auto& m = s.at("exp_avg");
    m.copy_(result.narrow(0, offset, m.numel()).view(m.sizes()));
    offset += m.numel();
  }
  padding_.copy_(result.narrow(0, offset, padding_.numel()));
}

void OneBitLamb::step() {
  torch::NoGradGuard no_grad;
  lamb_coeffs_.clear();
  const bool setup = !initialized_;
  // Every tensor has state from here on (the flat momentum holds all of them).
  {
    size_t index = 0;
    for (const auto& g : groups_) {
      for (const auto& p : g.params) init_state(index++, p.detach());
    }
  }
  std::vector<torch::Tensor> momentum_before;
  if (compressing_) {
    for (const auto& s : state_) momentum_before.push_back(s.at("exp_avg").clone());
    if (!state_.front().count("scaling_coeff")) {
      std::vector<double> scales;
      for (const auto& s : state_) {
        const auto& m = s.at("exp_avg");
        scales.push_back(m.norm().item<double>() / std::sqrt(static_cast<double>(m.numel())));
      }
      double united = 0.0;
      for (double v : scales) united += v;
      united /= static_cast<double>(scales.size());
      // A tensor whose momentum is exactly zero keeps a coefficient of 1 (DeepSpeed divides by zero).
      for (size_t i = 0; i < state_.size(); ++i) set_scalar(state_[i], "scaling_coeff", scales[i] > 0 ? united / scales[i] : 1.0);
    }
  }

  size_t index = 0;
  double last_step = 0.0;
  for (auto& group : groups_) {
    const double beta1 = group.betas[0];
    const double beta2 = group.betas[1];
    const double max_coeff = extra_or(group, "max_coeff", 10.0);
    const double min_coeff = extra_or(group, "min_coeff", 0.01);
    for (auto& param : group.params) {
      const size_t i = index++;
      if (!param.grad().defined()) continue;
      auto grad = dense_grad(param, "1-bit Lamb");
      auto& state = state_[i];
      auto p = param.detach();
      last_step = increment_step(state);
      auto& exp_avg = state["exp_avg"];
      auto& exp_avg_sq = state["exp_avg_sq"];
      if (setup || compressing_) {
        if (!setup) exp_avg.mul_(beta1).add_(grad, 1.0 - beta1).mul_(scalar(state, "scaling_coeff"));
        continue;
      }
      exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
      exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
      if (last_step == static_cast<double>(settings_.freeze_step)) state["exp_avg_sq_fresh"] = exp_avg_sq.clone();
      const double weight_norm = p.norm().item<double>();
      auto update = exp_avg / (exp_avg_sq.sqrt() + group.eps);
      if (group.weight_decay > 0.0) update.add_(p, group.weight_decay);
      const double update_norm = update.norm().item<double>();
      double coeff = 1.0;
      if (weight_norm != 0.0 && update_norm != 0.0) coeff = std::clamp(weight_norm / update_norm, min_coeff, max_coeff);
      if (coeff != 1.0) {
        set_scalar(state, "lamb_coeff_freeze",
                   coefficients_.coeff_beta * scalar(state, "lamb_coeff_freeze") + (1.0 - coefficients_.coeff_beta) * coeff);
      }
      lamb_coeffs_.push_back(coeff);
      p.add_(update, -group.lr * coeff);
    }
  }

  if ((setup || compressing_) && group_->size() > 1) {
    if (setup) errors_ = {};
    compress_momentum();
    if (setup) errors_ = {};
  }

  if (compressing_ && !setup) {
    index = 0;
    for (auto& group : groups_) {
      const double beta1 = group.betas[0];
      const double beta2 = group.betas[1];
      for (auto& param : group.params) {
        const size_t i = index++;
        auto& state = state_[i];
        auto p = param.detach();
        auto& exp_avg = state["exp_avg"];
        exp_avg.div_(scalar(state, "scaling_coeff"));
        const auto reconstructed = (exp_avg - momentum_before[i] * beta1) / (1.0 - beta1);
        auto& fresh = state["exp_avg_sq_fresh"];
        fresh.mul_(beta2).addcmul_(reconstructed, reconstructed, 1.0 - beta2);
        const auto denom = state["exp_avg_sq"].sqrt() + group.eps;
        const auto update_prelim = exp_avg / denom;
        const auto update = group.weight_decay > 0.0 ? update_prelim + group.weight_decay * p : update_prelim;
        const double update_norm = update.norm().item<double>();
        double factor = (denom / (fresh.sqrt() + group.eps)).max().item<double>();
        if (group.weight_decay > 0.0) {
          const double ratio = std::min(1.0, update_prelim.norm().item<double>() / update_norm);
          factor = factor * ratio + (1.0 - ratio);
        }
        factor = std::clamp(factor, coefficients_.factor_min, coefficients_.factor_max);
        const double last = scalar(state, "last_factor");
        factor = std::min(factor, last * (1.0 + coefficients_.factor_threshold));
        factor = std::max(factor, last * (1.0 - coefficients_.factor_threshold));
        set_scalar(state, "last_factor", factor);
        const double coeff = scalar(state, "lamb_coeff_freeze") * factor;
        lamb_coeffs_.push_back(coeff);
        p.add_(update, -group.lr * coeff);
      }
    }
  }

  if (setup) {
    initialized_ = true;
    return;
  }
  if (!compressing_ && last_step >= static_cast<double>(settings_.freeze_step)) compressing_ = true;
}

void OneBitLamb::state_loaded() {
  padding_ = torch::Tensor();
  errors_ = {};
  compressing_ = first_tensor_step(*this) >= static_cast<double>(settings_.freeze_step);
  if (compressing_) return;
  for (auto& s : state_) {
    set_scalar(s, "lamb_coeff_freeze", 0.0);
    set_scalar(s, "last_factor", 1.0);
    s.erase("scaling_coeff");
  }
}

}  // namespace deepspeed
