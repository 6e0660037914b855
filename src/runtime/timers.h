// Wall-clock timers of the engine's phases (DeepSpeed's SynchronizedWallClockTimer) and the
// throughput timer behind the SamplesPerSec lines. On a GPU the device is synchronised before
// a reading, so a timer measures the work and not only its launch.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace deepspeed {

class Timers {
 public:
  explicit Timers(std::function<void()> synchronize) : synchronize_(std::move(synchronize)) {}
  void start(const std::string& name);
  void stop(const std::string& name);
  // Milliseconds accumulated since the last reset; resets when asked.
  // (WallClockBreakdown turns these into DeepSpeed's log lines.)
  double elapsed_ms(const std::string& name, bool reset = true);

 private:
  struct Timer {
    std::chrono::steady_clock::time_point started;
    bool running = false;
    double elapsed_ms = 0;
  };
  std::function<void()> synchronize_;
  std::map<std::string, Timer> timers_;
};

class ThroughputTimer {
 public:
  ThroughputTimer(int64_t batch_size, int64_t steps_per_output, std::function<void()> synchronize,
                  std::function<std::pair<double, double>()> memory_gb);
  void start();
  // Returns the SamplesPerSec line to print at this step, or an empty string.
  std::string stop(bool global_step, int64_t epoch);
  double avg_samples_per_sec() const;

 private:
  static constexpr int64_t kStartStep = 2;  // the first steps warm up and are not timed
  int64_t batch_size_;
  int64_t steps_per_output_;
  std::function<void()> synchronize_;
  std::function<std::pair<double, double>()> memory_gb_;
  bool started_ = false;
  std::chrono::steady_clock::time_point start_time_;
  bool timing_ = false;
  int64_t micro_step_count_ = 0;
  int64_t global_step_count_ = 0;
  double total_elapsed_ = 0;
  double step_elapsed_ = 0;
};

}  // namespace deepspeed
