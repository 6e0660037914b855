#include "runtime/monitor/tensorboard_monitor.h"

#include <filesystem>

namespace deepspeed::monitor {

std::string log_dir(const MonitorConfig& config) {
  return (std::filesystem::path(config.output_path) / config.job_name).string();
}

void TensorBoardMonitor::write_events(const std::vector<MonitorEvent>& events) {
  const double now = wall_time_now();
  for (const auto& e : events) writer_.add_scalar(e.tag, e.value, e.step, now);
  writer_.flush();
}

}  // namespace deepspeed::monitor
