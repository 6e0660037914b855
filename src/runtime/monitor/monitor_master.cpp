// DeepSpeed's MonitorMaster: the monitors the config enables, rank 0 only; and the refusal
// of the online monitors, whose services this build cannot reach.
#include <deepspeed/monitor.h>

#include <deepspeed/errors.h>

#include "runtime/monitor/csv_monitor.h"
#include "runtime/monitor/tensorboard_monitor.h"

namespace deepspeed {
namespace {

void refuse_online_monitor(bool enabled, const char* key, const char* service) {
  if (!enabled) return;
  throw ConfigError(key, std::string(service) +
                             " reports to a network service, which this C++ build of DeepSpeed does not reach "
                             "(there is no client library for it here); set it to false and log to "
                             "\"tensorboard\" or \"csv_monitor\" instead (docs/monitoring.md)");
}

}  // namespace

MonitorMaster::MonitorMaster(const DeepSpeedConfig& config, int64_t rank) {
  refuse_online_monitor(config.wandb.enabled, "wandb.enabled", "Weights & Biases (wandb)");
  refuse_online_monitor(config.comet.enabled, "comet.enabled", "Comet (comet_ml)");
  refuse_online_monitor(config.trackio.enabled, "trackio.enabled", "Trackio");
  enabled_ = config.tensorboard.enabled || config.csv_monitor.enabled;
  if (rank != 0) return;
  if (config.tensorboard.enabled) monitors_.push_back(std::make_unique<monitor::TensorBoardMonitor>(config.tensorboard));
  if (config.csv_monitor.enabled) monitors_.push_back(std::make_unique<monitor::CsvMonitor>(config.csv_monitor));
}

MonitorMaster::~MonitorMaster() = default;

void MonitorMaster::write_events(const std::vector<MonitorEvent>& events) {
  for (auto& m : monitors_) m->write_events(events);
}

}  // namespace deepspeed
