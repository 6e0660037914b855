// A one-line progress bar for the epochs of the example, with the time left in the epoch and
// in the whole run (at the rate measured so far), drawn only when stdout is a terminal (never
// into logs or pipes, where \r lines would be noise) and at most ~10 times a second, so that
// it costs nothing next to a training step.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cifar10 {

// "1:02:03" / "2:03" for a number of seconds (rounded; "?" when unknown, e.g. negative).
std::string format_duration(double seconds);

// The bar's text: "<label> [=====>    ] 50/100 12.5 it/s eta 0:04 (run 1:04)". `later` is the
// iterations of the epochs after this one; the run's ETA is shown when there are any.
std::string progress_line(const std::string& label, int64_t done, int64_t total, double seconds, int64_t later);

class ProgressBar {
 public:
  // enabled: this rank draws (rank 0); the terminal check is added inside. `later`: as above.
  ProgressBar(bool enabled, int64_t total, std::string label, int64_t later = 0);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int64_t done);
  // Erases the bar so that an ordinary line can be printed; the next update() redraws it.
  void clear();
  bool active() const { return active_; }

 private:
  void draw(int64_t done);

  bool active_;
  int64_t total_;
  std::string label_;
  int64_t later_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace cifar10
