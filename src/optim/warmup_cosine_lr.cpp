#include "optim/warmup_cosine_lr.h"

#include <algorithm>
#include <cmath>

#include "optim/optim_log.h"
#include "optim/schedule_common.h"

namespace deepspeed {

namespace {
constexpr double kPi = 3.141592653589793;  // math.pi
}  // namespace

WarmupCosineLR::WarmupCosineLR(Optimizer& optimizer, ParamReader& params)
    : LRScheduler(optimizer, read_last_batch_iteration(params)),
      total_num_steps_(read_total_num_steps(params, "WarmupCosineLR")),
      warmup_min_ratio_(params.number("warmup_min_ratio").value_or(0.0)),
      warmup_num_steps_(std::max<int64_t>(2, read_warmup_num_steps(params))),
      cos_min_ratio_(params.number("cos_min_ratio").value_or(0.0001)),
      warmup_type_(read_warmup_type(params)),
      org_lrs_(deepspeed::get_lr(optimizer)) {
  if (total_num_steps_ < warmup_num_steps_) {
    optim_warning("total_num_steps " + std::to_string(total_num_steps_) +
                  " is less than warmup_num_steps " +
                  std::to_string(params.integer("warmup_num_steps").value_or(1000)));
  }
}

void WarmupCosineLR::initialize() {
  // As DeepSpeed: the lr is 0 between construction and the first step (docs/compatibility.md,
  // "DeepSpeed behaviours we reproduce").
  if (last_batch_iteration_ == -1) write_lr(std::vector<double>(org_lrs_.size(), 0.0));
}

double WarmupCosineLR::get_lr_ratio() const {
  if (last_batch_iteration_ < 0) return 0.0;
  if (last_batch_iteration_ < warmup_num_steps_) {
    const double r = warmup_fraction(warmup_type_, last_batch_iteration_, warmup_num_steps_);
    return warmup_min_ratio_ + r * (1.0 - warmup_min_ratio_);
  }
  const double real_last_step = static_cast<double>(last_batch_iteration_ - warmup_num_steps_ + 1);
  const double real_total_steps =
      std::max<double>(1.0, static_cast<double>(total_num_steps_ - warmup_num_steps_));
  // Clamped (DeepSpeed >= 0.19.3): after T the ratio stays at cos_min_ratio.
  const double progress = std::min(1.0, real_last_step / real_total_steps);
  const double cosine = (1.0 + std::cos(kPi * progress)) / 2.0;
  return std::max(0.0, cos_min_ratio_ + (1.0 - cos_min_ratio_) * cosine);
}

std::vector<double> WarmupCosineLR::get_lr() const {
  if (last_batch_iteration_ < 0) {
    optim_warning("Attempting to get learning rate from scheduler before it has started");
    return std::vector<double>(org_lrs_.size(), 0.0);
  }
  const double ratio = get_lr_ratio();
  std::vector<double> lrs;
  for (double lr : org_lrs_) lrs.push_back(lr * ratio);
  return lrs;
}

}  // namespace deepspeed
