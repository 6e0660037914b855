#include "runtime/timers.h"

#include <limits>

#include <fmt/format.h>

namespace deepspeed {

void Timers::start(const std::string& name) {
  auto& t = timers_[name];
  if (synchronize_) synchronize_();
  t.started = std::chrono::steady_clock::now();
  t.running = true;
}

void Timers::stop(const std::string& name) {
  auto& t = timers_[name];
  if (!t.running) return;
  if (synchronize_) synchronize_();
  t.elapsed_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t.started).count();
  t.running = false;
}

double Timers::elapsed_ms(const std::string& name, bool reset) {
  auto& t = timers_[name];
  double v = t.elapsed_ms;
  if (reset) t.elapsed_ms = 0;
  return v;
}

ThroughputTimer::ThroughputTimer(int64_t batch_size, int64_t steps_per_output,
                                 std::function<void()> synchronize,
                                 std::function<std::pair<double, double>()> memory_gb)
    : batch_size_(batch_size),
      steps_per_output_(steps_per_output),
      synchronize_(std::move(synchronize)),
      memory_gb_(std::move(memory_gb)) {}

void ThroughputTimer::start() {
  started_ = true;
  if (global_step_count_ >= kStartStep) {
    if (synchronize_) synchronize_();
    start_time_ = std::chrono::steady_clock::now();
    timing_ = true;
  }
}

std::string ThroughputTimer::stop(bool global_step, int64_t epoch) {
  if (!started_) return {};
  started_ = false;
  ++micro_step_count_;
  if (global_step) ++global_step_count_;
  std::string line;
  if (timing_) {
    if (synchronize_) synchronize_();
    double d = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
    total_elapsed_ += d;
    step_elapsed_ += d;
    if (global_step) {
      if (steps_per_output_ > 0 && global_step_count_ % steps_per_output_ == 0) {
        auto [alloc, max_alloc] = memory_gb_ ? memory_gb_() : std::pair<double, double>{0.0, 0.0};
        line = fmt::format(
            "epoch={}/micro_step={}/global_step={}, RunningAvgSamplesPerSec={}, "
            "CurrSamplesPerSec={}, MemAllocated={:.2f}GB, MaxMemAllocated={:.2f}GB",
            epoch, micro_step_count_, global_step_count_, avg_samples_per_sec(),
            static_cast<double>(batch_size_) / (step_elapsed_ + 1e-6), alloc, max_alloc);
      }
      step_elapsed_ = 0;
    }
  }
  return line;
}

double ThroughputTimer::avg_samples_per_sec() const {
  if (global_step_count_ <= kStartStep || total_elapsed_ <= 0) {
    return -std::numeric_limits<double>::infinity();
  }
  double per_step = total_elapsed_ / static_cast<double>(global_step_count_ - kStartStep);
  return static_cast<double>(batch_size_) / per_step;
}

}  // namespace deepspeed
