// OneCycle (DeepSpeed's 1Cycle policy): one triangular cycle of the lr between cycle_min_lr
// and cycle_max_lr (momentum β1 cycles the opposite way between cycle_max_mom and
// cycle_min_mom), optionally in stairs, then a decay phase.
//   S = first + second, ρ = first/S, b = k + 1, x = b/S − floor(b/S)
//   scale = x/ρ (x ≤ ρ) | (x − 1)/(ρ − 1); with c stairs on that half:
//   scale = floor(pos)/c, pos = (b mod S)·c/first (rising) | (S − b mod S)·c/second
//   k < S: lr = min + (max − min)·scale; β1 = max_mom − (max_mom − min_mom)·scale
//   k ≥ S: d = (k − S + 1)/decay_step_size; lr = min/(1 + decay_lr_rate·d);
//          β1 = max_mom·(1 + decay_mom_rate·d) (plain min / max_mom when disabled)
// Momentum is written as betas = (β1, 0.99): β2 is overwritten, as DeepSpeed does. With an
// optimizer that has no betas (SGD, Adagrad) cycling momentum is disabled with a warning.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "deepspeed/lr_schedules.h"
#include "optim/params_reader.h"

namespace deepspeed {

class OneCycle : public LRScheduler {
 public:
  OneCycle(Optimizer& optimizer, ParamReader& params);

  std::vector<double> get_lr() const override;
  std::optional<std::vector<std::array<double, 2>>> get_mom() const override;
  std::string name() const override { return "OneCycle"; }
  bool cycle_momentum() const { return cycle_momentum_; }

 protected:
  void initialize() override;
  void apply() override;

 private:
  double scale_factor() const;

  double first_step_size_;
  double second_step_size_;
  double total_size_;
  double step_ratio_;
  int64_t first_stair_count_;
  int64_t second_stair_count_;
  double decay_step_size_;
  bool skip_lr_decay_ = false;
  bool skip_mom_decay_ = false;

  std::vector<double> min_lrs_;
  std::vector<double> max_lrs_;
  double decay_lr_rate_;

  bool cycle_momentum_;
  std::vector<double> min_moms_;
  std::vector<double> max_moms_;
  double decay_mom_rate_;
};

}  // namespace deepspeed
