#include "optim/one_cycle.h"

#include <cmath>

#include "deepspeed/errors.h"
#include "optim/optim_log.h"
#include "optim/schedule_common.h"

namespace deepspeed {

namespace {
// DeepSpeed writes (β1, 0.99) whatever β2 the optimizer had.
constexpr double kOneCycleBeta2 = 0.99;
}  // namespace

OneCycle::OneCycle(Optimizer& optimizer, ParamReader& params)
    : LRScheduler(optimizer, read_last_batch_iteration(params)) {
  const size_t groups = optimizer.param_groups().size();

  // Cycle shape.
  first_step_size_ = params.number("cycle_first_step_size").value_or(2000.0);
  second_step_size_ = params.number("cycle_second_step_size").value_or(first_step_size_);
  if (!(first_step_size_ > 0)) {
    throw ConfigError(params.path("cycle_first_step_size"),
                      "cycle_first_step_size must be positive, got " + python_repr(first_step_size_));
  }
  if (!(second_step_size_ >= 0)) {
    throw ConfigError(params.path("cycle_second_step_size"),
                      "cycle_second_step_size must not be negative, got " +
                          python_repr(second_step_size_));
  }
  total_size_ = first_step_size_ + second_step_size_;
  step_ratio_ = first_step_size_ / total_size_;
  first_stair_count_ = params.integer("cycle_first_stair_count").value_or(0);
  second_stair_count_ = params.integer("cycle_second_stair_count").value_or(first_stair_count_);
  decay_step_size_ = params.number("decay_step_size").value_or(0.0);
  if (decay_step_size_ == 0.0) {
    skip_lr_decay_ = true;
    skip_mom_decay_ = true;
  }

  // Learning rate (cycle_min_lr and cycle_max_lr have no default in DeepSpeed).
  for (const char* key : {"cycle_min_lr", "cycle_max_lr"}) {
    if (!params.has(key)) {
      params.accept(key);
      throw ConfigError(params.path(key), std::string("OneCycle requires ") + key);
    }
  }
  min_lrs_ = *params.per_group("cycle_min_lr", groups, "cycle_min_lr");
  max_lrs_ = *params.per_group("cycle_max_lr", groups, "cycle_max_lr");
  decay_lr_rate_ = params.number("decay_lr_rate").value_or(0.0);
  if (decay_lr_rate_ == 0.0) skip_lr_decay_ = true;

  // Momentum.
  cycle_momentum_ = params.boolean("cycle_momentum").value_or(true);
  min_moms_ = params.per_group("cycle_min_mom", groups, "cycle_min_mom")
                  .value_or(std::vector<double>(groups, 0.8));
  max_moms_ = params.per_group("cycle_max_mom", groups, "cycle_max_mom")
                  .value_or(std::vector<double>(groups, 0.9));
  decay_mom_rate_ = params.number("decay_mom_rate").value_or(0.0);
  if (cycle_momentum_ && !optimizer.has_betas()) {
    optim_warning("cycle_momentum is disabled because optimizer " + optimizer.class_name() +
                  " does not support momentum, no betas attribute in defaults");
    cycle_momentum_ = false;
  }
  if (cycle_momentum_ && decay_mom_rate_ == 0.0) skip_mom_decay_ = true;
}

void OneCycle::initialize() {
  if (last_batch_iteration_ != -1) return;
  // DeepSpeed writes min lr and (cycle_min_mom, 0.99), although get_mom() at k = -1
  // reports cycle_max_mom (scale 0).
  write_lr(min_lrs_);
  if (cycle_momentum_) {
    auto& groups = optimizer_.param_groups();
    for (size_t i = 0; i < groups.size(); ++i) groups[i].betas = {min_moms_[i], kOneCycleBeta2};
  }
}

void OneCycle::apply() {
  LRScheduler::apply();
  if (auto moms = get_mom()) {
    auto& groups = optimizer_.param_groups();
    for (size_t i = 0; i < groups.size() && i < moms->size(); ++i) groups[i].betas = (*moms)[i];
  }
}

double OneCycle::scale_factor() const {
  const double batch_iteration = static_cast<double>(last_batch_iteration_ + 1);
  const double cycle = std::floor(1.0 + batch_iteration / total_size_);
  const double x = 1.0 + batch_iteration / total_size_ - cycle;
  double scale;
  int64_t stair_count;
  if (x <= step_ratio_) {
    scale = x / step_ratio_;
    stair_count = first_stair_count_;
  } else {
    scale = (x - 1.0) / (step_ratio_ - 1.0);
    stair_count = second_stair_count_;
  }
  if (stair_count > 0) {
    // From the integer batch offset, not from `scale`: a float scale can land just under
    // an exact stair at a half-cycle boundary (DeepSpeed's reasoning too).
    double cycle_iteration = std::fmod(batch_iteration, total_size_);
    if (cycle_iteration < 0) cycle_iteration += total_size_;  // Python's % for k < -1
    const double count = static_cast<double>(stair_count);
    const double position = cycle_iteration <= first_step_size_
                                ? cycle_iteration * count / first_step_size_
                                : (total_size_ - cycle_iteration) * count / second_step_size_;
    scale = std::floor(position) / count;
  }
  return scale;
}

std::vector<double> OneCycle::get_lr() const {
  std::vector<double> lrs;
  if (static_cast<double>(last_batch_iteration_) < total_size_) {
    const double scale = scale_factor();
    for (size_t i = 0; i < min_lrs_.size(); ++i) {
      lrs.push_back(min_lrs_[i] + (max_lrs_[i] - min_lrs_[i]) * scale);
    }
    return lrs;
  }
  if (skip_lr_decay_) return min_lrs_;
  const double decay_interval =
      (static_cast<double>(last_batch_iteration_) - total_size_ + 1.0) / decay_step_size_;
  const double factor = 1.0 + decay_lr_rate_ * decay_interval;
  for (double lr : min_lrs_) lrs.push_back(lr / factor);
  return lrs;
}

std::optional<std::vector<std::array<double, 2>>> OneCycle::get_mom() const {
  if (!cycle_momentum_) return std::nullopt;
  std::vector<std::array<double, 2>> moms;
  if (static_cast<double>(last_batch_iteration_) < total_size_) {
    const double scale = scale_factor();
    for (size_t i = 0; i < min_moms_.size(); ++i) {
      moms.push_back({max_moms_[i] - (max_moms_[i] - min_moms_[i]) * scale, kOneCycleBeta2});
    }
    return moms;
  }
  const double decay_interval =
      (static_cast<double>(last_batch_iteration_) - total_size_ + 1.0) / decay_step_size_;
  const double factor = skip_mom_decay_ ? 1.0 : 1.0 + decay_mom_rate_ * decay_interval;
  for (double mom : max_moms_) moms.push_back({mom * factor, kOneCycleBeta2});
  return moms;
}

}  // namespace deepspeed
