// torch.optim.lr_scheduler.StepLR, which DeepSpeed builds for the scheduler type "StepLR":
// lr = base_lr · gamma^floor(k / step_size), base_lr = each group's lr at construction.
// As in torch, the constructor takes the first step itself (k = last_epoch = 0, lr = base),
// and state_dict() is torch's dict (last_epoch, base_lrs, step_size, gamma, ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "deepspeed/lr_schedules.h"
#include "optim/params_reader.h"

namespace deepspeed {

class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, ParamReader& params);

  std::vector<double> get_lr() const override;
  std::string name() const override { return "StepLR"; }
  nlohmann::json state_dict() const override;
  void load_state_dict(const nlohmann::json& state) override;

 protected:
  void initialize() override;

 private:
  int64_t step_size_;
  double gamma_;
  std::vector<double> base_lrs_;
};

}  // namespace deepspeed
