#include "progress_bar.h"

#include <cmath>
#include <cstdio>

#include <unistd.h>

namespace cifar10 {
namespace {

constexpr int kWidth = 30;
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);

}  // namespace

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const auto total = static_cast<long long>(std::llround(seconds));
  char buf[48];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  }
  return buf;
}

std::string progress_line(const std::string& label, int64_t done, int64_t total, double seconds, int64_t later) {
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
  std::string bar(static_cast<std::size_t>(filled), '=');
  if (filled < kWidth) bar += '>' + std::string(static_cast<std::size_t>(kWidth - filled - 1), ' ');
  // Unknown until the first iterations are done.
  const double epoch_left = rate > 0 ? static_cast<double>(total - done) / rate : -1.0;
  const double run_left = rate > 0 ? static_cast<double>(total - done + later) / rate : -1.0;
  char head[64];
  std::snprintf(head, sizeof head, " %lld/%lld %.1f it/s eta ", static_cast<long long>(done),
                static_cast<long long>(total), rate);
  std::string line = label + " [" + bar + "]" + head + format_duration(epoch_left);
  if (later > 0) line += " (run " + format_duration(run_left) + ")";
  return line;
}

ProgressBar::ProgressBar(bool enabled, int64_t total, std::string label, int64_t later)
    : active_(enabled && total > 0 && isatty(STDOUT_FILENO)),
      total_(total),
      label_(std::move(label)),
      later_(later),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - kRedrawEvery) {}

ProgressBar::~ProgressBar() { clear(); }

void ProgressBar::update(int64_t done) {
  if (!active_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedrawEvery && done < total_) return;
  last_draw_ = now;
  draw(done);
}

void ProgressBar::draw(int64_t done) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::printf("\r\033[K%s", progress_line(label_, done, total_, seconds, later_).c_str());
  std::fflush(stdout);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!drawn_) return;
  std::printf("\r\033[K");
  std::fflush(stdout);
  drawn_ = false;
  last_draw_ = std::chrono::steady_clock::now() - kRedrawEvery;
}

}  // namespace cifar10
