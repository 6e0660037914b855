// A one-line progress bar for the epochs of the example, drawn only when stdout is a
// terminal (never into logs or pipes, where \r lines would be noise) and at most ~10 times a
// second, so that it costs nothing next to a training step.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cifar10 {

class ProgressBar {
 public:
  // enabled: this rank draws (rank 0); the terminal check is added inside.
  ProgressBar(bool enabled, int64_t total, std::string label);
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
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace cifar10
