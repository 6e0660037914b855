// The "tensorboard" monitor: every event becomes a scalar in one event file under
// <output_path>/<job_name>/ (DeepSpeed's TensorBoardMonitor over torch's SummaryWriter).
#pragma once

#include <deepspeed/config.h>
#include <deepspeed/monitor.h>

#include "runtime/monitor/event_file_writer.h"

namespace deepspeed::monitor {

// <output_path>/<job_name>, joined as Python's os.path.join does (an empty output_path means
// the current directory; an absolute job_name stands alone).
std::string log_dir(const MonitorConfig& config);

class TensorBoardMonitor final : public Monitor {
 public:
  explicit TensorBoardMonitor(const MonitorConfig& config) : writer_(log_dir(config)) {}
  void write_events(const std::vector<MonitorEvent>& events) override;
  const std::string& path() const { return writer_.path(); }

 private:
  EventFileWriter writer_;
};

}  // namespace deepspeed::monitor
