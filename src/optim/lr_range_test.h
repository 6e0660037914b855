// LRRangeTest (DeepSpeed): the lr grows from lr_range_test_min_lr to find the largest lr
// that still trains. interval = (k+1)/step_size (floored when staircase);
// lr = min·(1 + step_rate·interval). The constructor writes min.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deepspeed/lr_schedules.h"
#include "optim/params_reader.h"

namespace deepspeed {

class LRRangeTest : public LRScheduler {
 public:
  LRRangeTest(Optimizer& optimizer, ParamReader& params);

  std::vector<double> get_lr() const override;
  std::string name() const override { return "LRRangeTest"; }

 protected:
  void initialize() override;

 private:
  std::vector<double> min_lrs_;
  int64_t step_size_;
  double step_rate_;
  bool staircase_;
};

}  // namespace deepspeed
