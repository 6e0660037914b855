// Monitors (DeepSpeed's deepspeed.monitor): scalar training events -- the loss, the learning
// rate, the loss scale, phase timings, or anything the user adds -- that rank 0 writes to
// TensorBoard event files and CSV files under <output_path>/<job_name>/, laid out as
// DeepSpeed lays them out (docs/monitoring.md). The engine writes DeepSpeed's Train/Samples/*
// events itself; Engine::monitor().write_events adds the user's own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <deepspeed/config.h>

namespace deepspeed {

// One point of one curve: `step` is the x axis (the engine uses the global sample count).
struct MonitorEvent {
  std::string tag;  // "Train/Samples/lr"
  double value = 0;
  int64_t step = 0;
};

class Monitor {
 public:
  virtual ~Monitor() = default;
  // Writes and flushes the events, so that a crash later loses none of them.
  virtual void write_events(const std::vector<MonitorEvent>& events) = 0;
};

// Every monitor the config enables (DeepSpeed's MonitorMaster). Only rank 0 writes; on the
// other ranks write_events does nothing.
class MonitorMaster final : public Monitor {
 public:
  // Throws ConfigError naming "wandb.enabled", "comet.enabled" or "trackio.enabled" when an
  // online monitor is on, on every rank alike: they report to a network service that this
  // C++ build does not reach. On rank 0 creates the output folders and files; one that
  // cannot be created is an Error naming it.
  MonitorMaster(const DeepSpeedConfig& config, int64_t rank);
  ~MonitorMaster() override;
  MonitorMaster(const MonitorMaster&) = delete;
  MonitorMaster& operator=(const MonitorMaster&) = delete;

  // Whether the config enables any monitor (DeepSpeed's monitor.enabled), on every rank.
  bool enabled() const { return enabled_; }
  void write_events(const std::vector<MonitorEvent>& events) override;

 private:
  bool enabled_ = false;
  std::vector<std::unique_ptr<Monitor>> monitors_;
};

}  // namespace deepspeed
