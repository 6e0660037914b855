#include "schedule_csv.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <deepspeed/lr_schedules.h>
#include <deepspeed/optimizer.h>

namespace deepspeed {

void write_schedule_csv(const DeepSpeedConfig& config, int64_t steps, std::ostream& out, std::ostream& notes) {
  OptimizerConfig optimizer_config;
  if (config.optimizer) {
    optimizer_config = *config.optimizer;
  } else {
    optimizer_config.type = "Adam";
    notes << "ds_config: the config has no optimizer; using Adam with its defaults\n";
  }
  std::vector<ParamGroup> groups(1);
  groups[0].params.push_back(torch::zeros({1}));
  auto optimizer = make_optimizer(optimizer_config.type, optimizer_config.params, std::move(groups));

  std::unique_ptr<LRScheduler> schedule;
  if (config.scheduler) {
    schedule = make_lr_scheduler(config.scheduler->type, config.scheduler->params, *optimizer);
  } else {
    notes << "ds_config: the config has no scheduler; the lr stays constant\n";
  }

  out << "step,lr,momentum\n";
  for (int64_t step = 1; step <= steps; ++step) {
    const ParamGroup& group = optimizer->param_groups().front();
    const double momentum = optimizer->uses_momentum() ? group.momentum : group.betas[0];
    // {} prints the shortest text that reads back to the same double (as Python's repr).
    fmt::print(out, "{},{},{}\n", step, group.lr, momentum);
    if (schedule) schedule->step();
  }
}

}  // namespace deepspeed
