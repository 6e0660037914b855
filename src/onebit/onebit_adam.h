// 1-bit Adam (DeepSpeed's OnebitAdam): Adam whose momentum, after a warm-up, is all-reduced
// with the error-compensated 1-bit compression of comm/compressed_allreduce.h instead of the
// engine averaging full-precision gradients.
//
// Per tensor, with g the gradient and t the step (no bias correction, as DeepSpeed's):
//   t = 1 (the first step() of the object): nothing is updated; exp_avg passes once through
//     the compressed all-reduce (zero on a fresh start), as DeepSpeed's set-up step does.
//   warm-up (t <= freeze_step): g is the engine's average over the data-parallel ranks;
//     m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//   compressed (after a step t >= freeze_step): g is this rank's own gradient;
//     m = compressed_allreduce(β1·m + (1-β1)·g);  v stays frozen
//     (a group with extra "non_freeze" = 1 averages g in full precision and updates v)
//   update = m / (sqrt(v) + eps) + weight_decay·p;  p -= lr·update
// The state is DeepSpeed's ("step", "exp_avg", "exp_avg_sq"); the compression errors are this
// rank's own and are dropped when a checkpoint is loaded (DeepSpeed resets them too), and the
// phase follows the loaded step.
#pragma once

#include <memory>
#include <vector>

#include <deepspeed/comm.h>
#include <deepspeed/optimizer.h>

#include "comm/compressed_allreduce.h"
#include "onebit/onebit_settings.h"

namespace deepspeed {

class OneBitAdam : public Optimizer {
 public:
  OneBitAdam(std::vector<ParamGroup> groups, std::shared_ptr<comm::ProcessGroup> group, OneBitSettings settings);
  static std::unique_ptr<Optimizer> create(const nlohmann::json& params, std::vector<ParamGroup> groups,
                                           std::shared_ptr<comm::ProcessGroup> group);

  void step() override;
  std::string name() const override { return "OneBitAdam"; }
  std::string class_name() const override { return "OnebitAdam"; }
  bool needs_averaged_gradients() const override { return !compressing_; }
  void state_loaded() override;
  const OneBitSettings& settings() const { return settings_; }

 private:
  std::shared_ptr<comm::ProcessGroup> group_;
  OneBitSettings settings_;
  bool initialized_ = false;  // the set-up step ran
  bool compressing_ = false;  // DeepSpeed's adam_freeze_key
  std::vector<comm::CompressionErrors> errors_;  // per tensor in group order; made when first needed
};

}  // namespace deepspeed
