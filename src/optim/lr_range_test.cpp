#include "optim/lr_range_test.h"

#include <cmath>

#include "deepspeed/errors.h"
#include "optim/schedule_common.h"

namespace deepspeed {

LRRangeTest::LRRangeTest(Optimizer& optimizer, ParamReader& params)
    : LRScheduler(optimizer, read_last_batch_iteration(params)) {
  const size_t groups = optimizer.param_groups().size();
  min_lrs_ = params.per_group("lr_range_test_min_lr", groups, "lr_range_test_min_lr")
                 .value_or(std::vector<double>(groups, 1e-3));
  const std::string size_key = "lr_range_test_step_size";
  const double size = params.number(size_key).value_or(2000.0);
  if (!(size > 0) || size != std::floor(size) || size > 9.0e18) {
    throw ConfigError(params.path(size_key),
                      "lr_range_test_step_size must be a positive integer, got " + python_repr(size));
  }
  step_size_ = static_cast<int64_t>(size);
  step_rate_ = params.number("lr_range_test_step_rate").value_or(1.0);
  staircase_ = params.boolean("lr_range_test_staircase").value_or(false);
}

void LRRangeTest::initialize() {
  if (last_batch_iteration_ == -1) write_lr(min_lrs_);
}

std::vector<double> LRRangeTest::get_lr() const {
  double interval = static_cast<double>(last_batch_iteration_ + 1) / static_cast<double>(step_size_);
  if (staircase_) interval = std::floor(interval);
  const double increase = 1.0 + step_rate_ * interval;
  std::vector<double> lrs;
  for (double lr : min_lrs_) lrs.push_back(lr * increase);
  return lrs;
}

}  // namespace deepspeed
