// 0/1 Adam (DeepSpeed's ZeroOneAdam): Adam whose variance is updated on an exponentially
// thinning schedule and then frozen, whose momentum is all-reduced with 1-bit compression
// between variance updates, and which, once the variance is frozen, takes local steps and
// synchronises the accumulated update (1-bit compressed) every local_step_interval steps.
//
// Per tensor, t the step, g the gradient (averaged by the engine only on the steps this
// optimizer asks it to: variance-update steps before the freeze):
//   t = 1 (the first step() of the object): a set-up step; nothing is updated.
//   before the freeze: on a variance step (t % var_interval == 0):
//       v = β2·v + (1-β2)·g²;  m = β1·m + (1-β1)·g
//     else: m = β1·m + (1-β1)·compressed_allreduce(g)
//     every var_update_scaler variance steps var_interval doubles.
//   after the freeze (t > var_freeze_step): m = β1·m + (1-β1)·g (local), lrs += lr, and the
//     update accumulates into u; every local_step_interval steps the ranks agree:
//       p -= u;  u = compressed_allreduce(u·(sqrt(v)+eps));  m = -u/lrs;  p += u/(sqrt(v)+eps)
//     every local_step_scaler steps local_step_interval doubles, up to local_step_clipper.
//   update = m / (sqrt(v) + eps) + weight_decay·p;  p -= lr·update
// State: DeepSpeed's "step", "exp_avg", "exp_avg_sq", "var_interval", "var_counter",
// "local_step_interval", "local_step_counter", "lrs", "momentum_accumulator" (u). The
// compression errors are this rank's own and dropped when a checkpoint is loaded; so is u, as
// DeepSpeed drops it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <deepspeed/comm.h>
#include <deepspeed/optimizer.h>

#include "comm/compressed_allreduce.h"
#include "onebit/onebit_settings.h"

namespace deepspeed {

struct ZeroOneAdamSchedule {
  int64_t var_freeze_step = 100000;
  int64_t var_update_scaler = 16;
  int64_t local_step_scaler = 32678;
  int64_t local_step_clipper = 16;
};

class ZeroOneAdam : public Optimizer {
 public:
  ZeroOneAdam(std::vector<ParamGroup> groups, std::shared_ptr<comm::ProcessGroup> group, OneBitSettings settings,
              ZeroOneAdamSchedule schedule);
  static std::unique_ptr<Optimizer> create(const nlohmann::json& params, std::vector<ParamGroup> groups,
                                           std::shared_ptr<comm::ProcessGroup> group);

  void step() override;
  std::string name() const override { return "ZeroOneAdam"; }
  std::string class_name() const override { return "ZeroOneAdam"; }
  bool needs_averaged_gradients() const override { return averaged_next_; }
  void state_loaded() override;
  const ZeroOneAdamSchedule& schedule() const { return schedule_; }

 private:
  // The counters of one tensor's state, as 0-dim float64 tensors (DeepSpeed keeps them as
  // Python numbers in the state, which its checkpoints save).
  void reset_counters(std::map<std::string, torch::Tensor>& state) const;

  std::shared_ptr<comm::ProcessGroup> group_;
  OneBitSettings settings_;
  ZeroOneAdamSchedule schedule_;
  bool initialized_ = false;
  bool frozen_ = false;             // the variance is frozen (DeepSpeed's freeze_key)
  bool errors_reset_ = false;       // the errors were zeroed once at the freeze
  bool averaged_next_ = true;       // the engine averages the next step's gradients
  std::vector<comm::CompressionErrors> errors_;
};

}  // namespace deepspeed
