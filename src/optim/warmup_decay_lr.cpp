#include "optim/warmup_decay_lr.h"

#include <algorithm>

#include "optim/optim_log.h"
#include "optim/schedule_common.h"

namespace deepspeed {

WarmupDecayLR::WarmupDecayLR(Optimizer& optimizer, ParamReader& params)
    : WarmupLR(optimizer, params, 0.001),
      total_num_steps_(read_total_num_steps(params, "WarmupDecayLR")) {
  // DeepSpeed compares against N = max(2, n) but prints the configured n.
  const int64_t configured = params.integer("warmup_num_steps").value_or(1000);
  if (total_num_steps_ < warmup_num_steps_) {
    optim_warning("total_num_steps " + std::to_string(total_num_steps_) +
                  " is less than warmup_num_steps " + std::to_string(configured));
  }
}

double WarmupDecayLR::gamma() const {
  if (last_batch_iteration_ < warmup_num_steps_) return WarmupLR::gamma();
  return std::max(0.0, static_cast<double>(total_num_steps_ - last_batch_iteration_) /
                           std::max(1.0, static_cast<double>(total_num_steps_ - warmup_num_steps_)));
}

}  // namespace deepspeed
