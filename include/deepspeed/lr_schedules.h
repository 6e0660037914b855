// Learning-rate schedules of DeepSpeed's deepspeed/runtime/lr_schedules.py (WarmupLR,
// WarmupDecayLR, WarmupCosineLR, OneCycle, LRRangeTest) and torch's StepLR, built from the
// "scheduler" section of ds_config.json.
//
// A schedule keeps k = last_batch_iteration, −1 before the first step. step() sets
// k ← k+1 (or the given value) and writes get_lr() into every param group of the optimizer
// (OneCycle also writes betas). The engine steps it after each optimizer step that was not
// skipped, so optimizer step n (1-based) runs with the lr for k = n−2: the construction
// value for n = 1. state_dict() is {"last_batch_iteration": k} (StepLR: torch's dict).
// Formulas: docs/optimizers.md, "LR schedules", and each schedule's header.
//
//   auto sched = deepspeed::make_lr_scheduler("WarmupLR", {{"warmup_num_steps", 100}}, *opt);
//   ... opt->step(); sched->step();
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepspeed/optimizer.h"

namespace deepspeed {

class LRScheduler {
 public:
  // The optimizer must outlive the schedule.
  LRScheduler(Optimizer& optimizer, int64_t last_batch_iteration);
  virtual ~LRScheduler();
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // k ← k+1 (or `k` when given), then writes the schedule's values into the optimizer.
  void step(std::optional<int64_t> k = std::nullopt);
  // The lr of every group at the current k (does not write them).
  virtual std::vector<double> get_lr() const = 0;
  // (β1, β2) of every group at the current k, for schedules that set momentum (OneCycle
  // with cycle_momentum on an optimizer that has betas); nullopt otherwise.
  virtual std::optional<std::vector<std::array<double, 2>>> get_mom() const {
    return std::nullopt;
  }
  // The lrs last written into the optimizer (by the constructor or step()); empty if none.
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_batch_iteration() const { return last_batch_iteration_; }

  virtual nlohmann::json state_dict() const;
  // Restores k only (as DeepSpeed); the optimizer's lrs are written at the next step().
  virtual void load_state_dict(const nlohmann::json& state);
  // The config's type name: "WarmupLR", "OneCycle", "StepLR", ...
  virtual std::string name() const = 0;

 protected:
  // What the Python constructor does to the optimizer once the params are all checked
  // (DeepSpeed: only when last_batch_iteration == -1): e.g. WarmupLR writes warmup_min_lr.
  virtual void initialize() = 0;
  // Writes get_lr() (and whatever else the schedule drives) into the optimizer.
  virtual void apply();
  void write_lr(const std::vector<double>& lrs);

  Optimizer& optimizer_;
  int64_t last_batch_iteration_;
  std::vector<double> last_lr_;

 private:
  friend std::unique_ptr<LRScheduler> make_lr_scheduler(const std::string&, const nlohmann::json&,
                                                        Optimizer&);
};

// Builds the schedule named by a ds_config "scheduler" section: `type` is one of
// LRRangeTest, OneCycle, WarmupLR, WarmupDecayLR, WarmupCosineLR, StepLR (case-sensitive).
// Throws ConfigError at "scheduler.type" ("DeepSpeed does not recognize LR scheduler <name>")
// or "scheduler.params.<key>" (unknown key with the nearest accepted one, wrong type,
// missing required key, DeepSpeed's ValueErrors). Constructing writes the initial lrs into
// the optimizer as DeepSpeed does (WarmupLR: warmup_min_lr; WarmupCosineLR: 0; ...).
std::unique_ptr<LRScheduler> make_lr_scheduler(const std::string& type,
                                               const nlohmann::json& params,
                                               Optimizer& optimizer);

}  // namespace deepspeed
