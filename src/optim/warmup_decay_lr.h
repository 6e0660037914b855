// WarmupDecayLR (DeepSpeed): WarmupLR's warmup, then a linear decay back to warmup_min_lr
// at total_num_steps T: for k ≥ N, γ = max(0, (T − k) / max(1, T − N)).
// warmup_max_lr defaults to 0.001 here (not the group lr). Warns when T < N.
#pragma once

#include "optim/warmup_lr.h"

namespace deepspeed {

class WarmupDecayLR : public WarmupLR {
 public:
  WarmupDecayLR(Optimizer& optimizer, ParamReader& params);

  std::string name() const override { return "WarmupDecayLR"; }
  int64_t total_num_steps() const { return total_num_steps_; }

 protected:
  double gamma() const override;

 private:
  int64_t total_num_steps_;
};

}  // namespace deepspeed
