// WarmupCosineLR (DeepSpeed): the lr is each group's lr at construction (base) times a
// ratio that warms up from warmup_min_ratio to 1, then follows a cosine down to
// cos_min_ratio at total_num_steps T and stays there.
//   k < 0: ratio 0 (the constructor writes lr = 0).
//   k < N: r = log(k+1)/log(N) | k/N; ratio = wmin + r·(1 − wmin).
//   k ≥ N: p = min(1, (k − N + 1)/max(1, T − N)); ratio = max(0, cmin + (1 − cmin)(1 + cos πp)/2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deepspeed/lr_schedules.h"
#include "optim/params_reader.h"

namespace deepspeed {

class WarmupCosineLR : public LRScheduler {
 public:
  WarmupCosineLR(Optimizer& optimizer, ParamReader& params);

  std::vector<double> get_lr() const override;
  std::string name() const override { return "WarmupCosineLR"; }
  // The ratio applied to the base lrs at the current k.
  double get_lr_ratio() const;

 protected:
  void initialize() override;

 private:
  int64_t total_num_steps_;
  double warmup_min_ratio_;
  int64_t warmup_num_steps_;  // already max(2, n)
  double cos_min_ratio_;
  std::string warmup_type_;
  std::vector<double> org_lrs_;
};

}  // namespace deepspeed
