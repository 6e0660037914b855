// WarmupLR (DeepSpeed): lr rises from warmup_min_lr to warmup_max_lr over warmup_num_steps
// steps (log or linear), then stays at warmup_max_lr.
//   lr = min + (max − min)·γ,  γ = log(k+1)/log(N) | k/N for 0 ≤ k < N, 1 for k ≥ N,
//   N = max(2, warmup_num_steps); k < 0 → min (with DeepSpeed's warning).
// warmup_max_lr unset → each group's lr at construction. The constructor writes min.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deepspeed/lr_schedules.h"
#include "optim/params_reader.h"

namespace deepspeed {

class WarmupLR : public LRScheduler {
 public:
  WarmupLR(Optimizer& optimizer, ParamReader& params);

  std::vector<double> get_lr() const override;
  std::string name() const override { return "WarmupLR"; }

  const std::vector<double>& min_lrs() const { return min_lrs_; }
  const std::vector<double>& max_lrs() const { return max_lrs_; }
  int64_t warmup_num_steps() const { return warmup_num_steps_; }
  const std::string& warmup_type() const { return warmup_type_; }

 protected:
  // WarmupDecayLR passes its own default for warmup_max_lr (0.001 rather than the group lr).
  WarmupLR(Optimizer& optimizer, ParamReader& params, std::optional<double> default_max_lr);
  void initialize() override;
  // γ at k >= 0.
  virtual double gamma() const;

  std::vector<double> min_lrs_;
  std::vector<double> max_lrs_;
  int64_t warmup_num_steps_ = 2;  // already max(2, n)
  std::string warmup_type_;
};

}  // namespace deepspeed
