#include "optim/warmup_lr.h"

#include "optim/optim_log.h"
#include "optim/schedule_common.h"

namespace deepspeed {

WarmupLR::WarmupLR(Optimizer& optimizer, ParamReader& params)
    : WarmupLR(optimizer, params, std::nullopt) {}

WarmupLR::WarmupLR(Optimizer& optimizer, ParamReader& params,
                   std::optional<double> default_max_lr)
    : LRScheduler(optimizer, read_last_batch_iteration(params)) {
  const size_t groups = optimizer.param_groups().size();
  warmup_num_steps_ = std::max<int64_t>(2, read_warmup_num_steps(params));
  min_lrs_ = params.per_group("warmup_min_lr", groups, "min_lr")
                 .value_or(std::vector<double>(groups, 0.0));
  if (auto max = params.per_group("warmup_max_lr", groups, "max_lr")) {
    max_lrs_ = *max;
  } else if (default_max_lr) {
    max_lrs_.assign(groups, *default_max_lr);
  } else {
    // Unset (DeepSpeed's None since 0.18) means each group's current optimizer lr.
    max_lrs_ = deepspeed::get_lr(optimizer);
  }
  warmup_type_ = read_warmup_type(params);
}

void WarmupLR::initialize() {
  // DeepSpeed writes get_lr() at k = -1, i.e. min_lrs, and logs "Attempting to get learning
  // rate ... before it has started" on every construction; we write min_lrs without that
  // misleading warning.
  if (last_batch_iteration_ == -1) write_lr(min_lrs_);
}

double WarmupLR::gamma() const {
  if (last_batch_iteration_ < warmup_num_steps_) {
    return warmup_fraction(warmup_type_, last_batch_iteration_, warmup_num_steps_);
  }
  return 1.0;
}

std::vector<double> WarmupLR::get_lr() const {
  if (last_batch_iteration_ < 0) {
    optim_warning("Attempting to get learning rate from scheduler before it has started");
    return min_lrs_;
  }
  const double g = gamma();
  std::vector<double> lrs;
  for (size_t i = 0; i < min_lrs_.size(); ++i) {
    lrs.push_back(min_lrs_[i] + (max_lrs_[i] - min_lrs_[i]) * g);
  }
  return lrs;
}

}  // namespace deepspeed
