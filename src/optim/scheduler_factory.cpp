// make_lr_scheduler: the "scheduler" section of ds_config.json to a schedule
// (docs/optimizers.md, "LR schedules").
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "deepspeed/errors.h"
#include "deepspeed/lr_schedules.h"
#include "optim/lr_range_test.h"
#include "optim/one_cycle.h"
#include "optim/params_reader.h"
#include "optim/step_lr.h"
#include "optim/warmup_cosine_lr.h"
#include "optim/warmup_decay_lr.h"
#include "optim/warmup_lr.h"

namespace deepspeed {

namespace {

template <class Schedule>
std::unique_ptr<LRScheduler> build(Optimizer& optimizer, ParamReader& reader) {
  return std::make_unique<Schedule>(optimizer, reader);
}

struct Entry {
  std::unique_ptr<LRScheduler> (*build)(Optimizer&, ParamReader&);
  // Every keyword the Python constructor takes, so that a misspelt key is reported as
  // such (with the nearest one) before any "missing key" or value error.
  std::vector<std::string> keys;
};

const std::map<std::string, Entry>& builders() {
  static const std::map<std::string, Entry> kBuilders = {
      {"LRRangeTest",
       {&build<LRRangeTest>,
        {"lr_range_test_min_lr", "lr_range_test_step_size", "lr_range_test_step_rate",
         "lr_range_test_staircase", "last_batch_iteration"}}},
      {"OneCycle",
       {&build<OneCycle>,
        {"cycle_min_lr", "cycle_max_lr", "decay_lr_rate", "cycle_first_step_size",
         "cycle_second_step_size", "cycle_first_stair_count", "cycle_second_stair_count",
         "decay_step_size", "cycle_momentum", "cycle_min_mom", "cycle_max_mom",
         "decay_mom_rate", "last_batch_iteration"}}},
      {"WarmupLR",
       {&build<WarmupLR>,
        {"warmup_min_lr", "warmup_max_lr", "warmup_num_steps", "warmup_type",
         "last_batch_iteration"}}},
      {"WarmupDecayLR",
       {&build<WarmupDecayLR>,
        {"total_num_steps", "warmup_min_lr", "warmup_max_lr", "warmup_num_steps", "warmup_type",
         "last_batch_iteration"}}},
      {"WarmupCosineLR",
       {&build<WarmupCosineLR>,
        {"total_num_steps", "warmup_min_ratio", "warmup_num_steps", "cos_min_ratio",
         "warmup_type", "last_batch_iteration"}}},
      {"StepLR", {&build<StepLR>, {"step_size", "gamma", "last_epoch", "verbose"}}},
  };
  return kBuilders;
}

}  // namespace

std::unique_ptr<LRScheduler> make_lr_scheduler(const std::string& type,
                                               const nlohmann::json& params,
                                               Optimizer& optimizer) {
  auto it = builders().find(type);
  if (it == builders().end()) {
    std::set<std::string> known;
    for (const auto& [name, builder] : builders()) known.insert(name);
    std::string message = "DeepSpeed does not recognize LR scheduler " + type;
    const std::string near = nearest_key(type, known);
    if (edit_distance(type, near) <= std::max<size_t>(2, type.size() / 2)) {
      message += "; did you mean '" + near + "'?";
    }
    message += " (available: LRRangeTest, OneCycle, WarmupLR, WarmupDecayLR, WarmupCosineLR, StepLR)";
    throw ConfigError("scheduler.type", message);
  }
  ParamReader reader(params, "scheduler.params", type);
  for (const auto& key : it->second.keys) reader.accept(key);
  reader.reject_unknown();
  std::unique_ptr<LRScheduler> schedule = it->second.build(optimizer, reader);
  // Only now, with every value checked, does the schedule touch the optimizer.
  schedule->initialize();
  return schedule;
}

}  // namespace deepspeed
